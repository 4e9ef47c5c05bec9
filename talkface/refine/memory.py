"""The refiner's memory: the person's real mouths, addressed by mouth shape.

Keys are the lip shape the renderer drew (the 40 lip points of the expression, in the face
model's frontal frame, so head pose does not enter); values are the real mouth crops of the
clip's frames. A read is attention over the keys: the `k` nearest mouths, weighted by a softmax
of their key distances, each warped so its lips sit on the rendered lips, mixed by those
weights. The generator takes this as an extra input, so teeth, tongue and lip texture come from
the person's own frames instead of being invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from talkface.errors import CacheError
from talkface.face import topology
from talkface.face.geometry import similarity_matrix
from talkface.face.model import MeshFaceModel
from talkface.render.frames import decode_jpeg, encode_jpegs
from talkface.storage import load_npz, save_npz

MEMORY_FORMAT = 1
SHARPNESS = 0.5  # the temperature, in median nearest-key distances: lower reads favour the closest mouth


def mouth_keys(model: MeshFaceModel, expression: np.ndarray) -> np.ndarray:
    """(T, K) expression coefficients -> (T, 80) lip shapes in the model's frontal frame."""
    lips = model.vertices(np.asarray(expression, np.float64))[:, topology.lip_indices(), :2]
    return (lips - lips.mean(1, keepdims=True)).reshape(len(lips), -1).astype(np.float32)


@dataclass
class MouthMemory:
    """Real mouths of the clip.

    Attributes:
        keys: (N, 80) lip shapes (see `mouth_keys`).
        lips: (N, 40, 2) the lip points in each crop (crop pixels).
        frames: (N,) the clip frame each entry comes from.
        crops: (N, S, S, 3) uint8 RGB real face crops.
        temperature: softmax temperature of a read (squared key distance units).
    """

    keys: np.ndarray
    lips: np.ndarray
    frames: np.ndarray
    crops: np.ndarray
    temperature: float

    @classmethod
    def build(cls, keys: np.ndarray, lips: np.ndarray, frames: np.ndarray, crops: np.ndarray, exclude_window: int) -> "MouthMemory":
        """Memory from real crops; the temperature is set from how far each key's nearest usable neighbour lies."""
        memory = cls(keys.astype(np.float32), lips.astype(np.float32), frames.astype(np.int64), crops, 1.0)
        distances = memory._distances(memory.keys, memory.frames, exclude_window)
        nearest = np.sort(distances, 1)[:, 0]
        memory.temperature = float(max(SHARPNESS * np.median(nearest[np.isfinite(nearest)]), 1e-8))
        return memory

    def _distances(self, keys: np.ndarray, frames: np.ndarray | None, exclude_window: int) -> np.ndarray:
        distances = ((keys[:, None, :] - self.keys[None]) ** 2).sum(-1)
        if frames is not None:
            near = np.abs(frames[:, None] - self.frames[None]) <= exclude_window
            distances[near] = np.inf
        return distances

    def read(self, keys: np.ndarray, lips: np.ndarray, k: int, frames: np.ndarray | None = None, exclude_window: int = 0) -> np.ndarray:
        """Attention read for B rendered mouths.

        Args:
            keys: (B, 80) lip shapes of the rendered frames.
            lips: (B, 40, 2) their lip points in their crops.
            k: mouths mixed per read.
            frames, exclude_window: when reading for a clip frame, memory entries from within
                `exclude_window` frames of it are not used.

        Returns:
            (B, S, S, 3) float32 RGB: the mixed mouths, aligned to each rendered mouth.
        """
        size = self.crops.shape[1]
        distances = self._distances(keys.astype(np.float32), frames, exclude_window)
        k = min(k, len(self.keys))
        out = np.zeros((len(keys), size, size, 3), np.float32)
        for row in range(len(keys)):
            nearest = np.argpartition(distances[row], k - 1)[:k]
            logits = -distances[row, nearest] / self.temperature
            weights = np.exp(logits - logits.max())
            weights /= weights.sum()
            for entry, weight in zip(nearest, weights):
                matrix = similarity_matrix(self.lips[entry], lips[row])
                warped = cv2.warpAffine(self.crops[entry], matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)  # bilinear blurs the teeth it recalls
                out[row] += weight * warped
        return out

    def save(self, path: Path) -> None:
        jpeg, offsets = encode_jpegs(self.crops)
        save_npz(
            path,
            format=np.array(MEMORY_FORMAT),
            keys=self.keys,
            lips=self.lips,
            frames=self.frames,
            temperature=np.array(self.temperature),
            jpeg=jpeg,
            offsets=offsets,
        )

    @classmethod
    def load(cls, path: Path) -> "MouthMemory":
        arrays = load_npz(path)
        if int(arrays.get("format", -1)) != MEMORY_FORMAT:
            raise CacheError(f"{path} is from another talkface version; run finetune again to rebuild the refiner")
        crops = [decode_jpeg(arrays["jpeg"], arrays["offsets"], index) for index in range(len(arrays["offsets"]) - 1)]
        if any(crop is None for crop in crops):
            raise CacheError(f"{path} is damaged; run finetune again to rebuild the refiner")
        return cls(arrays["keys"], arrays["lips"], arrays["frames"], np.stack(crops), float(arrays["temperature"]))
