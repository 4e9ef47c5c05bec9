"""The motion file (.npz): the one format `track`, `speak` and `render` exchange."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.errors import CacheError, InputError
from talkface.face.topology import N_LANDMARKS
from talkface.storage import load_npz, save_npz

MOTION_FORMAT = 1
FPS_RANGE = (1.0, 120.0)  # frames/s a motion file may declare
MAX_FRAMES = 25 * 60 * 60 * 4  # four hours at 25 fps


@dataclass(frozen=True)
class Motion:
    """Per-frame face motion.

    Attributes:
        expression: (T, K) float32 coefficients of the person's expression basis.
        pose: (T, 6) float32 [pitch, yaw, roll] radians, [tx, ty] pixels, scale.
        landmarks: (T, 478, 3) float32 the model's Face Mesh landmarks in output pixels (a generated
            motion's are a `ProjectedLandmarks`, made when read).
        fps: frames/s.
    """

    expression: np.ndarray
    pose: np.ndarray
    landmarks: np.ndarray
    fps: float

    @property
    def n_frames(self) -> int:
        return len(self.pose)


def save_motion(path: str | Path, motion: Motion) -> Path:
    """Write a motion file atomically (plain arrays, no pickles)."""
    path = Path(path)
    save_npz(
        path,
        expression=motion.expression.astype(np.float32),
        pose=motion.pose.astype(np.float32),
        landmarks=motion.landmarks.astype(np.float32),
        fps=np.float32(motion.fps),
        format=np.int32(MOTION_FORMAT),
    )
    return path


def load_motion(path: str | Path) -> Motion:
    """Read a motion file, checking its arrays' shapes.

    Raises:
        InputError: missing file, wrong format version or inconsistent arrays.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"motion file not found: {path}")
    if not path.is_file():
        raise InputError(f"the motion file {path} is not a regular file; give a .npz written by talkface --save-motion")
    try:
        arrays = load_npz(path)
    except CacheError as exc:
        reason = exc.__cause__ or exc  # the reader's own words, without the cache's "delete and rebuild"
        raise InputError(f"{path} is not a readable motion file ({reason}); give a .npz written by talkface track/speak --save-motion") from None
    missing = {"expression", "pose", "landmarks", "fps"} - set(arrays)
    if missing:
        raise InputError(f"{path} is not a talkface motion file (missing {', '.join(sorted(missing))})")
    for name in ("expression", "pose", "landmarks", "fps", "format"):
        if name in arrays and arrays[name].dtype.kind not in "fiu":
            raise InputError(f"{path}: {name} holds {arrays[name].dtype} values, not numbers")
    for name in ("fps", "format"):
        if name in arrays and arrays[name].size != 1:
            raise InputError(f"{path}: {name} must be one number, not an array of shape {arrays[name].shape}")
    version = float(arrays["format"].reshape(-1)[0]) if "format" in arrays else MOTION_FORMAT
    if version != MOTION_FORMAT:
        raise InputError(f"{path} has motion format {version:g}; this talkface reads {MOTION_FORMAT}")
    if arrays["pose"].ndim == 0:
        raise InputError(f"{path}: pose is a single number, not (T, 6)")
    n_frames = len(arrays["pose"])
    if arrays["pose"].shape != (n_frames, 6) or arrays["landmarks"].shape != (n_frames, N_LANDMARKS, 3):
        raise InputError(
            f"{path}: pose {arrays['pose'].shape} and landmarks {arrays['landmarks'].shape} do not match "
            f"(T, 6) and (T, {N_LANDMARKS}, 3)"
        )
    if arrays["expression"].ndim != 2 or len(arrays["expression"]) != n_frames:
        raise InputError(f"{path}: expression {arrays['expression'].shape} is not (T, K) with T = {n_frames} frames like pose")
    _check_values(path, arrays, n_frames)
    return Motion(*(arrays[name].astype(np.float32) for name in ("expression", "pose", "landmarks")), float(arrays["fps"].reshape(-1)[0]))


def _check_values(path: Path, arrays: dict[str, np.ndarray], n_frames: int) -> None:
    """Frame count, fps and values in range: finite, or NaN on whole frames (frames with no face)."""
    if not 1 <= n_frames <= MAX_FRAMES:
        raise InputError(f"{path} holds {n_frames} frames; a motion file needs 1 to {MAX_FRAMES} (four hours at 25 fps)")
    fps = float(arrays["fps"].reshape(-1)[0])
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:  # NaN fails too
        raise InputError(f"{path} declares {fps} frames/s; a motion file needs {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    per_frame = [arrays[name].reshape(n_frames, -1) for name in ("expression", "pose", "landmarks")]
    if any(np.isinf(values).any() for values in per_frame):
        raise InputError(f"{path} holds infinite values; it is damaged: write it again with --save-motion")
    missing = [np.isnan(values).any(axis=1) for values in per_frame]
    partly = [np.isnan(values).any(axis=1) & ~np.isnan(values).all(axis=1) for values in per_frame]
    if any(mask.any() for mask in partly) or not (missing[0] == missing[1]).all():
        raise InputError(f"{path} holds NaN values inside frames; it is damaged: write it again with --save-motion")
    if missing[1].all():
        raise InputError(f"{path} has no frame with a face (every pose is NaN)")
