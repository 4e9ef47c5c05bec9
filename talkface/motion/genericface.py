"""The generic face kit: what a one-photo profile borrows from the corpus's people.

One photo shows one expression and one pose, so a photo profile takes from here: a shared
expression basis (in the face's own frontal frame, RMS radius 1, the same for everyone), the
blink profile and rate, the head-motion model with its spread, and where the mouth is
closed in the generic lip space. Shipped as one safetensors file made by
`scripts/generic_face.py` from ../shared/data/corpus (the clips are listed in its metadata).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.errors import CacheError
from talkface.motion.generic import WEIGHTS_DIR
from talkface.motion.pose import PoseModel
from talkface.storage import read_weights, save_weights

GENERIC_FACE_PATH = WEIGHTS_DIR / "generic_face.safetensors"
GENERIC_FACE_FORMAT = 1


@dataclass(frozen=True)
class GenericFace:
    """Attributes:
    basis: (K, 478, 3) orthonormal expression directions, model units.
    spread: (K,) each direction's standard deviation over the corpus.
    blinks_per_minute: the corpus's median blink rate.
    blink_profile: (2R + 1, K) a blink's expression change around its deepest frame.
    pose: head motion from audio on standardised poses (mean 0, spread 1).
    pose_spread: (6,) typical spread: pitch, yaw, roll (radians); x, y shift and scale as
        fractions of the face's scale.
    closed_lips: (120,) the generic lip offset of a closed mouth.
    meta: how it was made: date, command, clips.
    """

    basis: np.ndarray
    spread: np.ndarray
    blinks_per_minute: float
    blink_profile: np.ndarray
    pose: PoseModel
    pose_spread: np.ndarray
    closed_lips: np.ndarray
    meta: dict

    def save(self, path: Path) -> None:
        """One safetensors file (arrays + JSON metadata), written atomically."""
        arrays = {
            "basis": self.basis, "spread": self.spread, "blink_profile": self.blink_profile,
            "pose_spread": self.pose_spread, "closed_lips": self.closed_lips, **self.pose.to_arrays(),
        }
        arrays = {k: np.asarray(v, np.float32) for k, v in arrays.items() if k != "pose_alpha"}
        header = {"format": GENERIC_FACE_FORMAT, "blinks_per_minute": self.blinks_per_minute, "pose_alpha": self.pose.ridge.alpha}
        save_weights(path, arrays, {"header": json.dumps(header), "meta": json.dumps(self.meta)})

    @classmethod
    def load(cls, path: Path = GENERIC_FACE_PATH) -> "GenericFace":
        """Raise CacheError naming the file and the fix if it is missing, damaged or of another format."""
        from safetensors import SafetensorError

        fix = "reinstall talkface, or rebuild it with `python scripts/generic_face.py`"
        if not Path(path).is_file():
            raise CacheError(f"no generic face kit at {path}; {fix}")
        try:
            arrays, metadata = read_weights(path)
            header, meta = json.loads(metadata["header"]), json.loads(metadata["meta"])
            if header.get("format") != GENERIC_FACE_FORMAT:
                raise CacheError(f"format {header.get('format')} is not {GENERIC_FACE_FORMAT}")
            arrays["pose_alpha"] = np.float64(header["pose_alpha"])
            basis = arrays["basis"]
            if basis.ndim != 3 or basis.shape[1:] != (478, 3) or not np.isfinite(basis).all():
                raise CacheError(f"its basis has shape {basis.shape}, not (K, 478, 3)")
            return cls(
                basis, arrays["spread"], float(header["blinks_per_minute"]), arrays["blink_profile"],
                PoseModel.from_arrays(arrays), arrays["pose_spread"], arrays["closed_lips"], meta,
            )
        except (SafetensorError, KeyError, OSError, ValueError, TypeError, CacheError) as exc:
            raise CacheError(f"the generic face kit {path} is damaged ({exc}); {fix}") from exc
