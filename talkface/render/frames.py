"""The clip's frames kept in the profile as JPEG bytes, for random access as backgrounds."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from talkface.errors import CacheError
from talkface.storage import load_npz, save_npz

JPEG_QUALITY = 95  # about 40 dB PSNR: well above what the face render reaches


def encode_jpegs(images: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """RGB images -> (concatenated JPEG bytes, offsets): image i is data[offsets[i]:offsets[i + 1]]."""
    return _encode_all(cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1] for image in images)


def _encode_all(encoded: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Encoded images (byte arrays) -> (their bytes concatenated, offsets)."""
    chunks, offsets = [], [0]
    for data in encoded:
        chunks.append(data.ravel())
        offsets.append(offsets[-1] + len(data))
    return np.concatenate(chunks), np.array(offsets, np.int64)


def decode_jpeg(data: np.ndarray, offsets: np.ndarray, index: int) -> np.ndarray | None:
    """Image `index` of `encode_jpegs` output as RGB, or None if its bytes are damaged."""
    image = cv2.imdecode(data[offsets[index] : offsets[index + 1]], cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def save_frames(path: Path, frames: Iterable[np.ndarray]) -> int:
    """Store RGB frames as one npz of concatenated JPEGs; returns how many."""
    data, offsets = encode_jpegs(frames)
    save_npz(path, data=data, offsets=offsets)
    return len(offsets) - 1


class FrameStore:
    """Random access to stored frames, with a small cache for the sequential reads of playback."""

    def __init__(self, path: Path, cache_size: int = 8):
        arrays = load_npz(path)
        self._data, self._offsets = arrays["data"], arrays["offsets"]
        self._cache: dict[int, np.ndarray] = {}
        self._cache_size = cache_size

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        if index in self._cache:
            return self._cache[index]
        frame = decode_jpeg(self._data, self._offsets, index)
        if frame is None:
            raise CacheError(f"stored frame {index} cannot be decoded; finetune again to rebuild the profile")
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[index] = frame
        return frame


MATTES_FORMAT = 1  # mattes.npz: the person matte of every stored frame (render/headwarp.py), PNG bytes


def save_mattes(path: Path, mattes: Iterable[np.ndarray]) -> int:
    """Store person mattes ((H, W) float in [0, 1]) as one npz of 8-bit PNGs; returns how many.
    A matte is mostly 0 and 1, so each takes a few kB."""
    data, offsets = _encode_all(cv2.imencode(".png", np.clip(matte * 255 + 0.5, 0, 255).astype(np.uint8))[1] for matte in mattes)
    save_npz(path, data=data, offsets=offsets)
    return len(offsets) - 1


class MatteStore:
    """Random access to stored person mattes, as float32 in [0, 1]."""

    def __init__(self, path: Path):
        arrays = load_npz(path)
        self._data, self._offsets = arrays["data"], arrays["offsets"]

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.bytes(index).astype(np.float32) * np.float32(1 / 255)

    def bytes(self, index: int) -> np.ndarray:
        """Matte `index` as stored: (H, W) uint8, 255 for the person."""
        matte = cv2.imdecode(self._data[self._offsets[index] : self._offsets[index + 1]], cv2.IMREAD_GRAYSCALE)
        if matte is None:
            raise CacheError(f"stored person matte {index} cannot be decoded; finetune again to rebuild the profile")
        return matte
