"""The person profile: one versioned folder holding everything `finetune` learned.

Layout (all plain arrays and JSON, nothing executable):
    profile.json     format version, source clip, settings, validation numbers
    model.npz/json   the face model (identity, expression basis, mesh, texture)
    fit.npz          the clip's own per-frame pose and expression
    motion.npz       the audio->motion model (generic lip model, personal map, pose, blinks)
    reference.png    a frontal frame of the clip
    frames.npz       the clip's frames (JPEG), the backgrounds of rendered video
    refiner.*        the GAN refiner (generator weights, mouth memory, summary), when trained;
                     refiner.json is written last; refiner_checkpoint.safetensors while training
`profile.json` is written last, so a folder without it is an unfinished finetune.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from talkface.errors import CacheError, InputError, ProfileError
from talkface.face.model import FaceFit, MeshFaceModel
from talkface.motion.model import MotionModel
from talkface.storage import atomic_write_bytes, load_npz, save_npz, write_json

PROFILE_FORMAT = 3  # bump when the folder layout changes; older profiles must be re-finetuned


def talkface_home() -> Path:
    """Where profiles live by default: $TALKFACE_HOME or ~/.local/share/talkface."""
    return Path(os.environ.get("TALKFACE_HOME", Path.home() / ".local" / "share" / "talkface"))


def default_profile_dir(video: Path) -> Path:
    return talkface_home() / "profiles" / video.stem


@dataclass(frozen=True)
class Profile:
    """A finetuned person, loaded."""

    folder: Path
    info: dict
    face: MeshFaceModel
    clip_fit: FaceFit
    motion: MotionModel
    reference_frame: np.ndarray

    @property
    def fps(self) -> float:
        return float(self.info["source"]["fps"])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the clip, the output size of `speak`."""
        return int(self.info["source"]["width"]), int(self.info["source"]["height"])

    @property
    def feature_set(self) -> str:
        return self.info["features"]

    @property
    def has_refiner(self) -> bool:
        """Whether finetune trained the GAN refiner for this person (see talkface.refine)."""
        from talkface.refine.model import Refiner  # torch: only when asked

        return Refiner.exists(self.folder)


def save_profile(folder: Path, info: dict, face: MeshFaceModel, clip_fit: FaceFit, motion: MotionModel, reference_frame: np.ndarray) -> None:
    """Write a profile; profile.json goes last so an interrupted save is never taken as valid."""
    face.save(folder)
    save_npz(folder / "fit.npz", pose=clip_fit.pose, expression=clip_fit.expression)
    save_npz(folder / "motion.npz", **motion.to_arrays())
    ok, png = cv2.imencode(".png", reference_frame[..., ::-1])
    atomic_write_bytes(folder / "reference.png", png.tobytes())
    write_json(folder / "profile.json", {**info, "format": PROFILE_FORMAT, "validation": motion.validation})
    remember_latest(folder)


def load_profile(folder: str | Path | None = None) -> Profile:
    """Load a profile folder (default: the most recently finetuned one).

    Raises:
        InputError: no such profile, or none finetuned yet.
        CacheError: written by an incompatible talkface version, or damaged.
    """
    folder = Path(folder) if folder else latest_profile()
    meta_path = folder / "profile.json"
    if not meta_path.exists() or not (folder / "frames.npz").exists():
        hint = "it is not a finished profile (was finetune interrupted? rerun it to resume)" if folder.exists() else "no such folder"
        raise InputError(f"no talkface profile at {folder}: {hint}")
    try:
        info = json.loads(meta_path.read_text())
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProfileError(f"{meta_path} is damaged ({exc}); rebuild the profile: talkface finetune --video CLIP --out {folder} --force") from None
    if info.get("format") != PROFILE_FORMAT:
        raise CacheError(
            f"the profile at {folder} has format {info.get('format')}, this talkface reads format {PROFILE_FORMAT}; "
            f"finetune it again: talkface finetune --video {info.get('source', {}).get('path', 'CLIP')} --out {folder}"
        )
    rebuild = f"talkface finetune --video {info.get('source', {}).get('path', 'CLIP')} --out {folder}"
    try:
        fit = load_npz(folder / "fit.npz")
        motion = MotionModel.from_arrays(load_npz(folder / "motion.npz"), info.get("validation", {}))
        reference = cv2.imread(str(folder / "reference.png"))
        if reference is None:
            raise CacheError(f"{folder / 'reference.png'} is missing or damaged")
        face = MeshFaceModel.load(folder)
        clip_fit = FaceFit(fit["pose"], fit["expression"])
    except (CacheError, KeyError, ValueError, TypeError, IndexError, OSError) as exc:
        raise ProfileError(f"the profile at {folder} is damaged ({exc}); rebuild it: {rebuild} --force") from None
    return Profile(folder, info, face, clip_fit, motion, reference[..., ::-1].copy())


def update_profile_info(folder: Path, **fields) -> None:
    """Add or replace top-level fields of a finished profile's profile.json (atomically)."""
    path = Path(folder) / "profile.json"
    write_json(path, {**json.loads(path.read_text()), **fields})


def remember_latest(folder: Path) -> None:
    write_json(talkface_home() / "latest.json", {"profile": str(Path(folder).resolve())})


def latest_profile() -> Path:
    """The most recently finetuned profile's folder."""
    pointer = talkface_home() / "latest.json"
    try:
        return Path(json.loads(pointer.read_text())["profile"])
    except (OSError, ValueError, KeyError):
        raise InputError("no profile given and none finetuned yet: run talkface finetune --video CLIP first, or pass --person PROFILE") from None
