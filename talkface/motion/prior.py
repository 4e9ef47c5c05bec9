"""The generic audio->mouth prior, trained by talkface on several people's clips.

Its target is person-independent: the offsets of the 40 MediaPipe lip points from the
person's own mean lips, in model units (faces are normalised to RMS radius 1). A personal
model then maps these predicted lip offsets (plus the audio) to that person's expression
coefficients. Trained by `scripts/train_prior.py`; shipped in `talkface/weights/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.errors import CacheError
from talkface.face import topology
from talkface.face.model import MorphableModel
from talkface.motion.ridge import Ridge, chunked, stack_context
from talkface.storage import load_npz, save_npz

PRIOR_FORMAT = 1
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"  # shipped inside the package


def prior_path(feature_set: str) -> Path:
    """Where the shipped prior for a feature set lives."""
    return WEIGHTS_DIR / f"motion_prior_{feature_set.replace('+', '_')}.npz"


def lip_offsets(model: MorphableModel, expression: np.ndarray) -> np.ndarray:
    """(T, K) expression -> (T, 120) lip-point offsets from the mean lips, model units."""
    lips = model.landmark_index[topology.lip_indices()]
    vertices = model.vertices(expression.astype(np.float64))[:, lips]
    neutral = model.vertices(np.zeros((1, model.n_expression)))[0, lips]
    return (vertices - neutral).reshape(len(expression), -1).astype(np.float32)


@dataclass(frozen=True)
class MotionPrior:
    """Ridge from audio features (with +-radius frames of context) to generic lip offsets."""

    ridge: Ridge
    feature_set: str
    radius: int
    meta: dict

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(T, D) audio features -> (T, 120) lip offsets."""
        return chunked(lambda window: self.ridge.predict(stack_context(window, self.radius)), features, self.radius)

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {**self.meta, "format": PRIOR_FORMAT, "feature_set": self.feature_set, "radius": self.radius}
        return {**self.ridge.to_arrays("prior_"), "prior_meta": np.array(json.dumps(meta))}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "MotionPrior":
        meta = json.loads(str(arrays["prior_meta"]))
        if meta.get("format") != PRIOR_FORMAT:
            raise CacheError(f"motion prior format {meta.get('format')} is not {PRIOR_FORMAT}; retrain it")
        ridge = Ridge.from_arrays({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in arrays.items()}, "prior_")
        return cls(ridge, meta["feature_set"], int(meta["radius"]), meta)

    def save(self, path: Path) -> None:
        arrays = self.to_arrays()
        arrays["prior_weights"] = arrays["prior_weights"].astype(np.float16)  # halves the shipped file
        save_npz(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "MotionPrior":
        if not path.exists():
            raise CacheError(f"no motion prior at {path}; train one with scripts/train_prior.py or finetune with --no-prior")
        return cls.from_arrays(load_npz(path))
