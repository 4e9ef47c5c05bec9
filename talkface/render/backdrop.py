"""Replacing the scene behind the person: MediaPipe selfie segmentation (its model ships in the
mediapipe wheel), steadied over time and edge-refined with a guided filter, so hair edges stay
clean and the matte does not flicker."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from talkface.errors import InputError
from talkface.media import probe, read_frames

COLOURS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "green": (0, 177, 64), "blue": (0, 71, 187),
    "grey": (128, 128, 128), "gray": (128, 128, 128), "red": (200, 16, 46),
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
STEADY = 0.5  # weight of the previous frame's matte (0: none); steadies the edge without lag on motion
GUIDE_RADIUS = 4  # px, guided-filter window: the matte follows the frame's own edges (hair)
GUIDE_EPS = 1e-3
MATTE_LEVELS = (0.2, 0.8)  # matte values below/above count as fully background/person


def parse_colour(text: str) -> tuple[int, int, int] | None:
    """'green', '#00b140', '0,177,64' -> RGB; None if `text` is not a colour."""
    text = text.strip().lower()
    if text in COLOURS:
        return COLOURS[text]
    if text.startswith("#") and len(text) == 7:
        try:
            return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            return None
    parts = text.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)
    return None


def backdrop_frames(spec: str, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Endless RGB frames of `size` (width, height) from a colour, an image or a video (looped)."""
    width, height = size
    colour = parse_colour(spec)
    if colour is not None:
        plate = np.empty((height, width, 3), np.uint8)
        plate[:] = colour
        while True:
            yield plate
    path = Path(spec)
    if not path.exists():
        raise InputError(f"--background {spec!r} is neither a file nor a colour; give an image, a video, a name ({', '.join(COLOURS)}), #rrggbb or r,g,b")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"cannot read the background image {path}; use a PNG or JPEG")
        plate = _cover(image[..., ::-1], size)
        while True:
            yield plate
    probe(path)  # a clear error for a file that is not a video
    while True:
        count = 0
        for frame in read_frames(path):
            count += 1
            yield _cover(frame, size)
        if count == 0:
            raise InputError(f"the background video {path} has no frames")


def _cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover `size` and crop the middle (no stretching)."""
    width, height = size
    scale = max(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    y0, x0 = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


class BackgroundReplacer:
    """Puts the person of each frame in front of a new background; use as a context manager."""

    def __init__(self, spec: str, size: tuple[int, int]):
        self._plates = backdrop_frames(spec, size)
        next(self._plates)  # fail now, not after rendering, if the background is unusable
        self._previous: np.ndarray | None = None
        self._stack = contextlib.ExitStack()
        self._segmenter = None

    def __enter__(self) -> "BackgroundReplacer":
        from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

        self._segmenter = self._stack.enter_context(SelfieSegmentation(model_selection=0))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def matte(self, frame: np.ndarray) -> np.ndarray:
        """(H, W) float32 in [0, 1]: how much of each pixel is the person."""
        raw = self._segmenter.process(frame).segmentation_mask.astype(np.float32)
        if self._previous is not None:
            raw = STEADY * self._previous + (1 - STEADY) * raw
        self._previous = raw
        guide = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
        refined = cv2.ximgproc.guidedFilter(guide, raw, GUIDE_RADIUS, GUIDE_EPS)
        low, high = MATTE_LEVELS
        level = np.clip((refined - low) / (high - low), 0, 1)
        return level * level * (3 - 2 * level)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        alpha = self.matte(frame)[..., None]
        plate = next(self._plates)
        return np.clip(alpha * frame + (1 - alpha) * plate + 0.5, 0, 255).astype(np.uint8)
