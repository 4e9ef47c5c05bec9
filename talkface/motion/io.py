"""The motion file (.npz): the one format `track`, `speak` and `render` exchange."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.errors import InputError
from talkface.face.topology import N_LANDMARKS
from talkface.storage import load_npz, save_npz

MOTION_FORMAT = 1


@dataclass(frozen=True)
class Motion:
    """Per-frame face motion.

    Attributes:
        expression: (T, K) float32 coefficients of the person's expression basis.
        pose: (T, 6) float32 [pitch, yaw, roll] radians, [tx, ty] pixels, scale.
        landmarks: (T, 478, 3) float32 the model's Face Mesh landmarks in output pixels.
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
    arrays = load_npz(path)
    missing = {"expression", "pose", "landmarks", "fps"} - set(arrays)
    if missing:
        raise InputError(f"{path} is not a talkface motion file (missing {', '.join(sorted(missing))})")
    if int(arrays.get("format", MOTION_FORMAT)) != MOTION_FORMAT:
        raise InputError(f"{path} has motion format {int(arrays['format'])}; this talkface reads {MOTION_FORMAT}")
    n_frames = len(arrays["pose"])
    if arrays["pose"].shape != (n_frames, 6) or arrays["landmarks"].shape != (n_frames, N_LANDMARKS, 3):
        raise InputError(
            f"{path}: pose {arrays['pose'].shape} and landmarks {arrays['landmarks'].shape} do not match "
            f"(T, 6) and (T, {N_LANDMARKS}, 3)"
        )
    if len(arrays["expression"]) != n_frames:
        raise InputError(f"{path}: expression has {len(arrays['expression'])} frames but pose has {n_frames}")
    return Motion(arrays["expression"], arrays["pose"], arrays["landmarks"], float(arrays["fps"]))
