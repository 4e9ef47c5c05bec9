"""Training the refiner on (coarse render, real frame) pairs of the person's clip, resumably."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from talkface import progress
from talkface.config import RefinerConfig
from talkface.device import use_bfloat16
from talkface.face.model import FaceFit, MeshFaceModel, place_vertices
from talkface.refine.generic import fits as generic_fits
from talkface.refine.generic import load_generic_refiner
from talkface.refine.inputs import crop_inputs, generator_input, to_unit
from talkface.refine.memory import MouthMemory, mouth_keys
from talkface.refine.model import REFINER_FORMAT, Refiner, mouth_patch_size
from talkface.refine.networks import Generator, PatchDiscriminator, feature_matching, gan_loss, ssim_loss
from talkface.render.composite import FaceCompositor
from talkface.render.eyes import RegionMemory
from talkface.storage import partial_path

CHECKPOINT = "refiner_checkpoint.safetensors"
SHIFT_PX = 6  # random translation of training crops (augmentation)
SEED = 0


@dataclass
class PairSet:
    """Crop-space training pairs for every usable clip frame (uint8 images, uint8 masks x255)."""

    frames: np.ndarray  # (N,) clip frame index
    rendered: np.ndarray
    previous: np.ndarray
    memory: np.ndarray
    coverage: np.ndarray
    opening: np.ndarray
    region: np.ndarray
    real: np.ndarray
    lips: np.ndarray  # (N, 40, 2)
    keys: np.ndarray  # (N, 80)

    def inputs(self, rows: np.ndarray) -> torch.Tensor:
        unit = lambda masks: masks[rows].astype(np.float32) / 255  # noqa: E731
        return generator_input(self.rendered[rows], self.previous[rows], self.memory[rows], unit(self.coverage), unit(self.opening), unit(self.region))


def prepare_pairs(
    model: MeshFaceModel, fit: FaceFit, real_frames: Iterable[np.ndarray], config: RefinerConfig, n_train: int, device: str = "cpu", regions: tuple[RegionMemory, ...] = ()
) -> tuple[PairSet, MouthMemory]:
    """Render every usable frame of the clip onto itself, crop it, and build the mouth memory.

    Args:
        real_frames: the clip's frames in order (RGB uint8).
        n_train: frames [0, n_train) are for training (and the memory); the rest for validation.
        regions: the person's region memories drawn into the coarse frames as `speak` draws them
            (never from a frame within `config.exclude_window` of the one rendered): the eyes; the
            mouth patches are for coarse video only (render/mouth_patches.py).
    """
    compositor = FaceCompositor(model, device)
    picks, shuts = zip(*[region.choose(model, fit.expression, fit.pose, np.arange(len(fit.pose)), config.exclude_window) for region in regions]) if regions else ((), ())
    size = config.crop_size
    rows: dict[str, list] = {name: [] for name in ("frames", "rendered", "previous", "coverage", "opening", "region", "real", "lips")}
    previous_frame = None
    with progress.bar("rendering training pairs", len(fit.pose)) as advance:
        for index, real in enumerate(real_frames):
            advance(1)
            if index >= len(fit.pose) or not fit.valid[index]:
                previous_frame = None
                continue
            vertices = place_vertices(model, fit.expression[index], fit.pose[index])
            rendered, coverage = compositor.composite(real, vertices, vertices)  # the frame's own skin kept, as `speak` keeps its backgrounds'
            for region, chosen, shut in zip(regions, picks, shuts):
                rendered = region.paste(rendered, vertices[model.landmark_index], chosen[index], coverage, float(shut[index]))
            inputs = crop_inputs(rendered, rendered if previous_frame is None else previous_frame, coverage, vertices, size)
            previous_frame = rendered
            rows["frames"].append(index)
            rows["rendered"].append(inputs.rendered)
            rows["previous"].append(inputs.previous)
            rows["real"].append(inputs.crop.cut(real))
            rows["lips"].append(inputs.lips)
            for name in ("coverage", "opening", "region"):
                rows[name].append(np.round(getattr(inputs, name) * 255).astype(np.uint8))
    arrays = {name: np.stack(values) for name, values in rows.items()}
    keys = mouth_keys(model, fit.expression[arrays["frames"]])
    in_memory = arrays["frames"] < n_train
    memory = MouthMemory.build(keys[in_memory], arrays["lips"][in_memory], arrays["frames"][in_memory], arrays["real"][in_memory], config.exclude_window)
    reads = [
        memory.read(keys[start : start + 64], arrays["lips"][start : start + 64], config.memory_neighbours, arrays["frames"][start : start + 64], config.exclude_window)
        for start in range(0, len(keys), 64)
    ]
    memory_reads = np.clip(np.concatenate(reads) + 0.5, 0, 255).astype(np.uint8)
    return PairSet(memory=memory_reads, keys=keys, **arrays), memory


class RefinerTrainer:
    """Generator, discriminators, optimisers and the step counter; saves and resumes checkpoints."""

    def __init__(self, config: RefinerConfig, device: str = "cpu"):
        self.config = config
        self.device = torch.device(device)
        bfloat16 = use_bfloat16(str(self.device), config.precision)
        self.generator = Generator(config.channels).to(self.device).set_precision(bfloat16)
        self.frame_critic = PatchDiscriminator(6).to(self.device).set_precision(bfloat16)
        self.mouth_critic = PatchDiscriminator(3).to(self.device).set_precision(bfloat16)
        betas = (0.5, 0.999)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), config.learning_rate, betas=betas)
        critics = list(self.frame_critic.parameters()) + list(self.mouth_critic.parameters())
        self.d_optimizer = torch.optim.Adam(critics, config.learning_rate, betas=betas)
        self.step = 0
        self.losses: dict[str, float] = {}
        # the running average of the generator's weights: what is kept and used
        self.average = copy.deepcopy(self.generator).requires_grad_(False) if config.ema_decay > 0 else None
        self.checks: list[tuple[int, float]] = []  # (step, held-out face PSNR of the kept generator)

    @property
    def kept(self) -> Generator:
        """The generator that is saved and used: the running average, or the trained one."""
        return self.average if self.average is not None else self.generator

    def _update_average(self) -> None:
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))  # the first steps count fully
        with torch.no_grad():
            for kept, trained in zip(self.average.parameters(), self.generator.parameters()):
                kept.lerp_(trained, 1 - decay)

    def should_stop(self) -> bool:
        """Early stopping: the held-out PSNR has not risen by min_gain_db in `patience` checks."""
        config = self.config
        if config.patience <= 0 or self.step < config.min_steps or len(self.checks) <= config.patience:
            return False
        best_before = max(psnr for _, psnr in self.checks[: -config.patience])
        return max(psnr for _, psnr in self.checks[-config.patience :]) < best_before + config.min_gain_db

    # -- one step -------------------------------------------------------------------------
    def train_step(self, pairs: PairSet, rows: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
        config = self.config
        inputs = pairs.inputs(rows)
        real = torch.from_numpy(to_unit(pairs.real[rows]))
        region = torch.from_numpy(pairs.region[rows].astype(np.float32) / 255)[:, None]
        centres = pairs.lips[rows].mean(1)
        inputs, real, region, centres = _shift(rng, inputs, real, region, centres)
        inputs, real, region = inputs.to(self.device), real.to(self.device), region.to(self.device)
        patch = mouth_patch_size(config.crop_size)

        fake = self.generator(inputs)
        rendered = inputs[:, :3]
        # critics
        real_frame = self.frame_critic(torch.cat([real, rendered], 1))
        fake_frame = self.frame_critic(torch.cat([fake.detach(), rendered], 1))
        real_mouth = self.mouth_critic(_patches(real, centres, patch))
        fake_mouth = self.mouth_critic(_patches(fake.detach(), centres, patch))
        d_loss = (gan_loss(real_frame[-1], True) + gan_loss(fake_frame[-1], False) + gan_loss(real_mouth[-1], True) + gan_loss(fake_mouth[-1], False)) / 2
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()
        # generator
        fake_frame = self.frame_critic(torch.cat([fake, rendered], 1))
        fake_mouth = self.mouth_critic(_patches(fake, centres, patch))
        l1 = ((fake - real).abs() * (1 + config.mouth_weight * region)).mean()
        ssim = ssim_loss(fake, real)
        adversarial = gan_loss(fake_frame[-1], True) + gan_loss(fake_mouth[-1], True)
        matching = feature_matching(fake_frame, real_frame) + feature_matching(fake_mouth, real_mouth)
        g_loss = config.l1_weight * l1 + config.ssim_weight * ssim + config.adversarial_weight * adversarial + config.feature_match_weight * matching
        self.g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_optimizer.step()
        self.step += 1
        if self.average is not None:
            self._update_average()
        self.losses = {"l1": l1.item(), "ssim": ssim.item(), "adv": adversarial.item(), "d": d_loss.item()}
        return self.losses

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, path: Path, key: str) -> None:
        tensors = {}
        for name, module in self._modules().items():
            tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
        groups = {}
        for name, optimizer in self._optimizers().items():
            state = optimizer.state_dict()
            for index, values in state["state"].items():
                tensors.update({f"{name}.state.{index}.{k}": torch.as_tensor(v).detach().cpu().contiguous() for k, v in values.items()})
            groups[name] = state["param_groups"]
        metadata = {"key": key, "step": str(self.step), "groups": json.dumps(groups), "losses": json.dumps(self.losses), "checks": json.dumps(self.checks)}
        temporary = partial_path(path)
        try:
            save_file(tensors, str(temporary), metadata)
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)

    def resume(self, path: Path, key: str) -> bool:
        """Load a checkpoint made with the same key; False (and nothing loaded) otherwise."""
        if not path.exists():
            return False
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:
                metadata = handle.metadata() or {}
            if metadata.get("key") != key:
                return False
            tensors = load_file(str(path))
            for name, module in self._modules().items():
                prefix = f"{name}."
                module.load_state_dict({k[len(prefix) :]: v.to(self.device) for k, v in tensors.items() if k.startswith(prefix)})
            groups = json.loads(metadata["groups"])
            for name, optimizer in self._optimizers().items():
                state: dict = {}
                prefix = f"{name}.state."
                for k, v in tensors.items():
                    if k.startswith(prefix):
                        index, field = k[len(prefix) :].split(".", 1)
                        state.setdefault(int(index), {})[field] = v.to(self.device) if field != "step" else v
                optimizer.load_state_dict({"state": state, "param_groups": groups[name]})
            self.step = int(metadata["step"])
            self.losses = json.loads(metadata.get("losses", "{}"))
            self.checks = [tuple(check) for check in json.loads(metadata.get("checks", "[]"))]
            return True
        except Exception as error:  # a damaged checkpoint costs the progress, never the run
            progress.log(f"ignoring the refiner checkpoint {path.name} ({error}); training starts over")
            return False

    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"generator": self.generator, "frame_critic": self.frame_critic, "mouth_critic": self.mouth_critic}
        return modules if self.average is None else {**modules, "average": self.average}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}


def train_refiner(pairs: PairSet, memory: MouthMemory, n_train: int, config: RefinerConfig, folder: Path, key: str, preset: str, device: str = "cpu", max_steps: int | None = None) -> dict:
    """Train (or resume training) the refiner and write it into the profile folder.

    With `config.warm_start` and a generic refiner of the same widths (refine/generic.py), a
    run starting at step 0 loads it into every network first: `config.steps` then adapt it to
    the person; a resumed run keeps its checkpoint's weights.

    Args:
        pairs, memory: from `prepare_pairs`.
        n_train: clip frames before this index train; the rest validate.
        key: identifies the inputs and settings; a checkpoint with another key is not resumed.
        max_steps: stop after this many steps in total (for tests of resuming); the refiner is
            only written once `config.steps` are done.

    Returns:
        The refiner's summary (also written to refiner.json), or {} when stopped early.
    """
    torch.manual_seed(SEED)
    trainer = RefinerTrainer(config, device)
    checkpoint = folder / CHECKPOINT
    started_from = "nothing"
    if trainer.resume(checkpoint, key):
        progress.log(f"resuming refiner training at step {trainer.step} of {config.steps}")
    if config.warm_start and generic_fits(config.channels):
        if trainer.step == 0:  # every network, the running average too (a resumed run has its own)
            load_generic_refiner(trainer._modules())
        started_from = "generic"
    train_rows = np.flatnonzero(pairs.frames < n_train)
    held_rows = np.flatnonzero(pairs.frames >= n_train)
    started = time.perf_counter()
    last_saved = time.monotonic()
    stop = min(config.steps, max_steps) if max_steps is not None else config.steps
    stopped_early = False
    try:
        with progress.bar("training the refiner", config.steps) as advance:
            advance(trainer.step)
            while trainer.step < stop and not stopped_early:
                rng = np.random.default_rng([SEED, trainer.step])
                rows = rng.choice(train_rows, size=min(config.batch, len(train_rows)), replace=False)
                losses = trainer.train_step(pairs, rows, rng)
                status = " ".join(f"{k} {v:.3f}" for k, v in losses.items())
                if config.check_every > 0 and len(held_rows) and trainer.step % config.check_every == 0:
                    psnr = validate(trainer.kept, pairs, held_rows, trainer.device)["face_psnr_refined_db"]
                    trainer.checks.append((trainer.step, psnr))
                    stopped_early = trainer.should_stop()
                status += f" held-out {trainer.checks[-1][1]:.2f} dB" if trainer.checks else ""
                advance(1, status)
                if not progress.enabled() and trainer.step % max(1, config.steps // 10) == 0:  # logs, not a terminal
                    progress.log(f"refiner step {trainer.step}/{config.steps} ({time.perf_counter() - started:.0f} s): {status}")
                # the first checkpoint right away, so a run killed early (under load, say) keeps its start
                if time.monotonic() - last_saved > config.checkpoint_seconds or not checkpoint.exists():
                    trainer.save(checkpoint, key)
                    last_saved = time.monotonic()
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM through the CLI's handler
        trainer.save(checkpoint, key)
        progress.log(f"refiner training interrupted at step {trainer.step}; run finetune again to resume")
        raise
    trainer.save(checkpoint, key)
    if trainer.step < config.steps and not stopped_early:
        return {}
    if stopped_early:
        progress.log(f"refiner: held-out PSNR stopped improving; training ended at step {trainer.step} of {config.steps}")
    validation = validate(trainer.kept, pairs, held_rows, trainer.device)
    summary = {
        "format": REFINER_FORMAT,
        "preset": preset,
        "config": asdict(config),
        "steps": trainer.step,
        "stopped_early": stopped_early,
        "started_from": started_from,
        "held_out_checks": [[step, psnr] for step, psnr in trainer.checks],
        "train_frames": int(len(train_rows)),
        "train_seconds_this_run": round(time.perf_counter() - started, 1),
        "final_losses": trainer.losses,
        "validation": validation,
    }
    Refiner.save(folder, trainer.kept, memory, summary)
    checkpoint.unlink(missing_ok=True)
    return summary


def validate(generator: Generator, pairs: PairSet, rows: np.ndarray, device: torch.device) -> dict:
    """Held-out frames: face PSNR of coarse and refined crops, and mouth sharpness against real."""
    if len(rows) == 0:
        return {}
    generator.eval()
    refined = []
    with torch.inference_mode():
        for start in range(0, len(rows), 16):
            part = rows[start : start + 16]
            refined.append(generator(pairs.inputs(part).to(device)).cpu().numpy())
    generator.train()
    refined = np.clip((np.moveaxis(np.concatenate(refined), 1, -1) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    face = pairs.coverage[rows] > 127
    real, coarse = pairs.real[rows], pairs.rendered[rows]

    def psnr(images):
        error = ((images.astype(np.float64) - real) ** 2)[face].mean()
        return float(10 * np.log10(255**2 / max(error, 1e-10)))

    def mouth_sharpness(images):
        values = []
        for image, lips in zip(images, pairs.lips[rows]):
            x0, y0 = np.floor(lips.min(0)).astype(int)
            x1, y1 = np.ceil(lips.max(0)).astype(int)
            grey = cv2.cvtColor(image[max(y0, 0) : y1, max(x0, 0) : x1], cv2.COLOR_RGB2GRAY)
            values.append(cv2.Laplacian(grey, cv2.CV_64F).var())
        return float(np.mean(values))

    return {
        "frames": int(len(rows)),
        "face_psnr_coarse_db": round(psnr(coarse), 2),
        "face_psnr_refined_db": round(psnr(refined), 2),
        "mouth_sharpness_real": round(mouth_sharpness(real), 1),
        "mouth_sharpness_refined": round(mouth_sharpness(refined), 1),
        "mouth_sharpness_coarse": round(mouth_sharpness(coarse), 1),
    }


def _shift(rng: np.random.Generator, inputs, real, region, centres):
    """The same random translation for every image of each sample."""
    dy, dx = rng.integers(-SHIFT_PX, SHIFT_PX + 1, size=2)
    roll = lambda x: torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))  # noqa: E731
    return roll(inputs), roll(real), roll(region), centres + np.array([dx, dy])


def _patches(images: torch.Tensor, centres: np.ndarray, size: int) -> torch.Tensor:
    """(B, C, size, size) squares around each sample's mouth centre, kept inside the image."""
    limit = images.shape[-1] - size
    out = []
    for image, (x, y) in zip(images, centres):
        x0 = int(np.clip(round(x - size / 2), 0, limit))
        y0 = int(np.clip(round(y - size / 2), 0, limit))
        out.append(image[:, y0 : y0 + size, x0 : x0 + size])
    return torch.stack(out)
