"""The trained refiner in a profile: loading it and refining coarse frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from talkface.device import use_bfloat16
from talkface.errors import CacheError
from talkface.face.model import MeshFaceModel
from talkface.refine.inputs import CropInputs, crop_inputs, generator_input
from talkface.refine.memory import MouthMemory, mouth_keys
from talkface.refine.networks import Generator
from talkface.storage import partial_path, read_json_object, write_json

REFINER_FORMAT = 1
WEIGHTS, SUMMARY, MEMORY = "refiner.safetensors", "refiner.json", "refiner_memory.npz"
BATCH = 8  # frames refined at a time
T = TypeVar("T")


def mouth_patch_size(crop_size: int) -> int:
    """Side of the square the mouth critic looks at: 40% of the crop, a multiple of 8."""
    return max(32, int(round(crop_size * 0.4 / 8)) * 8)


@dataclass(frozen=True)
class Prepared:
    """One frame's refiner inputs: its crops, and the mouth memory's read for it."""

    inputs: CropInputs
    memory: np.ndarray
    kept: np.ndarray | None = None  # (S, S) share of each crop pixel that is the frame's own skin: left as it is


@dataclass
class Refiner:
    """A person's trained generator and mouth memory."""

    generator: Generator
    memory: MouthMemory
    summary: dict
    device: torch.device

    @property
    def crop_size(self) -> int:
        return int(self.summary["config"]["crop_size"])

    @staticmethod
    def save(folder: Path, generator: Generator, memory: MouthMemory, summary: dict) -> None:
        """Weights and memory first, the summary last: a folder with refiner.json has a whole refiner."""
        temporary = partial_path(folder / WEIGHTS)
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}, str(temporary))
            temporary.replace(folder / WEIGHTS)
        finally:
            temporary.unlink(missing_ok=True)
        memory.save(folder / MEMORY)
        write_json(folder / SUMMARY, summary)

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / SUMMARY).exists()

    @classmethod
    def load(cls, folder: Path, device: str = "cpu", precision: str = "auto") -> "Refiner":
        """The profile's refiner on `device`; `precision` as in `RefinerConfig.precision`."""
        try:
            summary = read_json_object(folder / SUMMARY)
            if summary.get("format") != REFINER_FORMAT:
                raise CacheError(f"the refiner in {folder} is from another talkface version; run finetune again")
            generator = Generator(tuple(summary["config"]["channels"]))
            generator.load_state_dict(load_file(str(folder / WEIGHTS)))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as error:  # TypeError: a field of another kind
            raise CacheError(f"the refiner in {folder} cannot be loaded ({type(error).__name__}: {error}); run finetune again to rebuild it") from None
        bfloat16 = use_bfloat16(device, precision)
        generator.eval().to(device).set_precision(bfloat16, channels_last=bfloat16 or torch.device(device).type == "cpu")
        return cls(generator, MouthMemory.load(folder / MEMORY), summary, torch.device(device))

    def prepare(
        self, model: MeshFaceModel, frame: np.ndarray, previous: np.ndarray, coverage: np.ndarray, vertices: np.ndarray, expression: np.ndarray,
        kept: np.ndarray | None = None,
    ) -> Prepared:
        """One frame's crops and memory read: the per-frame half of refining, which a pipeline can
        run in another thread than the batched network (`refine_prepared`). `kept`: (H, W) the
        share of each pixel that is the frame's own skin (`FaceCompositor.composite_keeping`),
        which the refined difference then leaves alone (it only added flicker there)."""
        inputs = crop_inputs(frame, previous, coverage, vertices, self.crop_size)
        keys = mouth_keys(model, np.asarray(expression)[None])
        memory = self.memory.read(keys, inputs.lips[None], self.summary["config"]["memory_neighbours"])[0]
        return Prepared(inputs, memory, None if kept is None or not kept.any() else inputs.crop.cut(kept.astype(np.float32)))

    def refine_prepared(self, frames: list[np.ndarray], prepared: list[Prepared]) -> list[np.ndarray]:
        """Refine a batch of coarse full frames whose crops and memory reads are `prepared`."""
        inputs = [item.inputs for item in prepared]
        tensor = generator_input(
            np.stack([item.rendered for item in inputs]),
            np.stack([item.previous for item in inputs]),
            np.stack([item.memory for item in prepared]),
            np.stack([item.coverage for item in inputs]),
            np.stack([item.opening for item in inputs]),
            np.stack([item.region for item in inputs]),
        )
        difference = self._correction(tensor)
        for delta, item in zip(difference, prepared):
            if item.kept is not None:
                delta *= np.clip(1 - item.kept, 0, 1)[..., None]
        return [item.crop.paste_difference(frame, delta) for item, frame, delta in zip(inputs, frames, difference)]

    def refine_stream(self, items: Iterable[tuple[np.ndarray, Prepared | None, T]]) -> Iterator[tuple[np.ndarray, T]]:
        """(frame, prepared, tag) in order -> (frame refined, tag) in the same order, BATCH frames
        through the network at a time; a frame with `prepared` None passes on as it is (the batch
        before it is refined first). `tag`: anything the caller needs back with its frame."""
        frames: list[np.ndarray] = []
        prepared: list[Prepared] = []
        tags: list[T] = []

        def flush() -> Iterator[tuple[np.ndarray, T]]:
            if frames:
                yield from zip(self.refine_prepared(frames, prepared), tags)
                for column in (frames, prepared, tags):
                    column.clear()

        for frame, ready, tag in items:
            if ready is None:
                yield from flush()
                yield frame, tag
                continue
            frames.append(frame)
            prepared.append(ready)
            tags.append(tag)
            if len(frames) == BATCH:
                yield from flush()
        yield from flush()

    def _correction(self, tensor: torch.Tensor) -> np.ndarray:
        """(B, S, S, 3) float pixel differences the generator adds to the rendered crops."""
        tensor = tensor.to(self.device)
        with torch.inference_mode():
            refined = self.generator(tensor)
            return ((refined - tensor[:, :3]) * 127.5).permute(0, 2, 3, 1).cpu().numpy()
