"""The person profile: one versioned folder holding everything `finetune` learned.

Layout (all plain arrays and JSON, nothing executable):
    profile.json     format version, source clip, settings, validation numbers
    model.npz/json   the face model (identity, expression basis, mesh, texture)
    fit.npz          the clip's own per-frame pose and expression
    motion.npz       the audio->motion model (generic lip model, personal map, pose, brows, blinks)
    eyes.npz         the clip's eyes, lids and brows (JPEG patches), replayed in rendered video;
                     profiles made before it existed render the eyes from the face texture
    mouth_patches.npz  the clip's lips and teeth (JPEG patches), likewise; profiles made before
                     it existed render the mouth from the face texture
    reference.png    a frontal frame of the clip
    frames.npz       the clip's frames (JPEG), the backgrounds of rendered video
    mattes.npz       each clip frame's person matte (PNG), for turning the background's head;
                     profiles made before it existed make the mattes while rendering (slower)
    refiner.*        the GAN refiner (generator weights, mouth memory, summary), when trained;
                     refiner.json is written last; refiner_checkpoint.safetensors while training
`profile.json` is written last, when everything above (the refiner included) is done, so a folder
without it is an unfinished finetune; rerunning finetune removes it first, so a profile being
rebuilt is never read half-old, half-new.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, TypeVar

import cv2
import numpy as np

from talkface.errors import CacheError, InputError, ProfileError
from talkface.face.model import FaceFit, MeshFaceModel
from talkface.motion.model import MotionModel
from talkface.storage import atomic_write_bytes, load_npz, save_npz, write_json

T = TypeVar("T")
PROFILE_KINDS = ("clip", "photo")
PROFILE_FORMAT = 3  # bump when the folder layout changes; older profiles must be re-finetuned


def talkface_home() -> Path:
    """Where profiles live by default: $TALKFACE_HOME or ~/.local/share/talkface."""
    return Path(os.environ.get("TALKFACE_HOME", Path.home() / ".local" / "share" / "talkface"))


def default_profile_dir(video: Path) -> Path:
    return talkface_home() / "profiles" / video.stem


@dataclass(frozen=True)
class SourceInfo:
    """The clip a profile was finetuned on."""

    path: str
    sha256: str
    n_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    reference_frame: int


@dataclass(frozen=True)
class ProfileInfo:
    """profile.json, typed: what finetune learned from which clip, and how well it validated."""

    name: str
    talkface: str
    created: str
    source: SourceInfo
    features: str
    blinks_per_minute: float
    finetune_seconds: float
    validation: dict  # held-out scores of the motion model: name -> number
    generic: dict | None = None  # the generic lip model used: its training date, command and cross-validation
    refiner: dict | None = None  # the refiner's summary, when one was trained
    kind: str = "clip"  # 'clip' (finetune --video) or 'photo' (finetune --image: one frame, generic motion)
    format: int = PROFILE_FORMAT

    @classmethod
    def from_json(cls, data) -> "ProfileInfo":
        """Check every field's type and range; ValueError naming the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        source = data.get("source")
        if not isinstance(source, dict):
            raise ValueError("field 'source' is missing or not an object")
        typed_source = SourceInfo(**{name: _field(source, name, kind, f"source.{name}") for name, kind in _SOURCE_FIELDS.items()})
        if not (0 < typed_source.fps <= 240 and typed_source.n_frames > 0 and 0 < typed_source.width <= 16384 and 0 < typed_source.height <= 16384):
            raise ValueError(f"field 'source' holds impossible values (fps {typed_source.fps}, {typed_source.n_frames} frames, {typed_source.width}x{typed_source.height})")
        validation = _field(data, "validation", dict, "validation")
        if not all(isinstance(k, str) and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))) for k, v in validation.items()):
            raise ValueError("field 'validation' must map names to numbers")
        return cls(
            name=_field(data, "name", str, "name"),
            talkface=_field(data, "talkface", str, "talkface"),
            created=_field(data, "created", str, "created"),
            source=typed_source,
            features=_field(data, "features", str, "features"),
            blinks_per_minute=_field(data, "blinks_per_minute", float, "blinks_per_minute"),
            finetune_seconds=_field(data, "finetune_seconds", float, "finetune_seconds"),
            validation=validation,
            generic=_optional(data, "generic", dict),
            refiner=_optional(data, "refiner", dict),
            kind=_kind(data),
            format=_field(data, "format", int, "format"),
        )

    def to_json(self) -> dict:
        return asdict(self)


_SOURCE_FIELDS = {"path": str, "sha256": str, "n_frames": int, "fps": float, "width": int, "height": int, "duration_s": float, "reference_frame": int}


def _field(data: dict, name: str, kind: type, label: str):
    value = data.get(name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is float and not math.isfinite(value)):
        raise ValueError(f"field {label!r} is {'missing' if value is None else f'not a {kind.__name__}: {value!r:.40}'}")
    return value


def _kind(data: dict) -> str:
    kind = data.get("kind", "clip")  # profiles made before photo profiles existed are clips
    if kind not in PROFILE_KINDS:
        raise ValueError(f"field 'kind' is {kind!r:.40}, not one of {', '.join(PROFILE_KINDS)}")
    return kind


def _optional(data: dict, name: str, kind: type):
    return None if data.get(name) is None else _field(data, name, kind, name)


@dataclass(frozen=True)
class Profile:
    """A finetuned person, loaded."""

    folder: Path
    info: ProfileInfo
    face: MeshFaceModel
    clip_fit: FaceFit
    motion: MotionModel
    reference_frame: np.ndarray

    @property
    def fps(self) -> float:
        return self.info.source.fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the clip, the output size of `speak`."""
        return self.info.source.width, self.info.source.height

    @property
    def is_photo(self) -> bool:
        """Made from one photo (`finetune --image`): one frame, so every head turn is a warp of it."""
        return self.info.kind == "photo"

    @property
    def feature_set(self) -> str:
        return self.info.features

    def read_part(self, load: Callable[[], T]) -> T:
        """`load()` of one of the profile's files (refiner, frames, ...): a damaged file is the
        profile's own error, naming the file and the command that rebuilds the profile."""
        try:
            return load()
        except CacheError as error:
            option = "--image" if self.is_photo else "--video"
            rebuild = f"talkface finetune {option} {self.info.source.path} --out {self.folder} --force"
            raise ProfileError(f"the profile at {self.folder} is damaged ({error}); rebuild it: {rebuild}") from None

    @property
    def has_refiner(self) -> bool:
        """Whether finetune trained the GAN refiner for this person (see talkface.refine).

        profile.json is published after the refiner, with its summary, so the profile's own
        record says it; the profile layer never imports the refiner."""
        return bool(self.info.refiner)


def save_profile_parts(folder: Path, face: MeshFaceModel, clip_fit: FaceFit, motion: MotionModel, reference_frame: np.ndarray) -> None:
    """Write a profile's arrays (each file atomically); the profile is not visible until :func:`publish_profile`."""
    face.save(folder)
    save_npz(folder / "fit.npz", pose=clip_fit.pose, expression=clip_fit.expression)
    save_npz(folder / "motion.npz", **motion.to_arrays())
    ok, png = cv2.imencode(".png", reference_frame[..., ::-1])
    atomic_write_bytes(folder / "reference.png", png.tobytes())


def withdraw_profile(folder: Path) -> None:
    """Hide a profile while finetune rewrites it, so nobody loads a half-old, half-new one."""
    (Path(folder) / "profile.json").unlink(missing_ok=True)


def publish_profile(folder: Path, info: ProfileInfo) -> None:
    """Make a complete profile visible: profile.json is written (atomically) last."""
    write_json(folder / "profile.json", info.to_json())
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
        raw = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProfileError(f"{meta_path} is damaged ({exc}); rebuild the profile: talkface finetune --video CLIP --out {folder} --force") from None
    source_path = raw.get("source", {}).get("path", "CLIP") if isinstance(raw, dict) and isinstance(raw.get("source"), dict) else "CLIP"
    rebuild = f"talkface finetune --video {source_path} --out {folder}"
    if isinstance(raw, dict) and raw.get("format") != PROFILE_FORMAT:
        raise CacheError(f"the profile at {folder} has format {raw.get('format')!r:.20}, this talkface reads format {PROFILE_FORMAT}; finetune it again: {rebuild}")
    try:
        info = ProfileInfo.from_json(raw)
    except ValueError as exc:
        raise ProfileError(f"{meta_path} is damaged ({exc}); rebuild the profile: {rebuild} --force") from None
    try:
        fit = load_npz(folder / "fit.npz")
        motion = MotionModel.from_arrays(load_npz(folder / "motion.npz"), info.validation)
        reference = cv2.imread(str(folder / "reference.png"))
        if reference is None:
            raise CacheError(f"{folder / 'reference.png'} is missing or damaged")
        face = MeshFaceModel.load(folder)
        clip_fit = FaceFit(fit["pose"], fit["expression"])
    except (CacheError, KeyError, ValueError, TypeError, IndexError, OSError) as exc:
        raise ProfileError(f"the profile at {folder} is damaged ({exc}); rebuild it: {rebuild} --force") from None
    return Profile(folder, info, face, clip_fit, motion, reference[..., ::-1].copy())


def remember_latest(folder: Path) -> None:
    write_json(talkface_home() / "latest.json", {"profile": str(Path(folder).resolve())})


def latest_profile() -> Path:
    """The most recently finetuned profile's folder."""
    pointer = talkface_home() / "latest.json"
    try:
        return Path(json.loads(pointer.read_text())["profile"])
    except (OSError, ValueError, KeyError):
        raise InputError("no profile given and none finetuned yet: run talkface finetune --video CLIP first, or pass --person PROFILE") from None
