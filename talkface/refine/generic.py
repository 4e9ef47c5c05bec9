"""The refiner pretrained across the corpus's people (scripts/generic_refiner.py): where every
finetune's refiner starts, so that a few hundred steps adapt it to the person instead of
thousands teaching it faces from nothing."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from talkface.errors import CacheError

GENERIC_REFINER_PATH = Path(__file__).resolve().parents[1] / "weights" / "generic_refiner.safetensors"
PARTS = ("generator", "frame_critic", "mouth_critic")


def _unreadable(path: Path, error: Exception) -> CacheError:
    return CacheError(f"the generic refiner {path} cannot be read ({error}); reinstall talkface")


def generic_refiner_meta(path: Path = GENERIC_REFINER_PATH) -> dict | None:
    """The generic refiner's record (steps, clips, channels, command), or None where no file is shipped."""
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as error:
        raise _unreadable(path, error) from error


def fits(channels: tuple[int, ...], path: Path = GENERIC_REFINER_PATH) -> bool:
    """Whether the generic refiner has these generator widths (the 'best' preset's are wider)."""
    meta = generic_refiner_meta(path)
    return meta is not None and tuple(json.loads(meta.get("channels", "[]"))) == tuple(channels)


def load_generic_refiner(modules: dict[str, torch.nn.Module], path: Path = GENERIC_REFINER_PATH) -> None:
    """Load the generic weights into `modules` ('generator', 'frame_critic', 'mouth_critic';
    any other name given the generator's weights too, such as its running average).

    Raises:
        CacheError: the file is damaged or holds other shapes.
    """
    try:
        tensors = load_file(str(path))
    except Exception as error:
        raise _unreadable(path, error) from error
    for name, module in modules.items():
        part = name if name in PARTS else "generator"
        prefix = f"{part}."
        state = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as error:
            raise CacheError(f"the generic refiner {path} does not fit this refiner ({part}: {str(error).splitlines()[0]})") from error
