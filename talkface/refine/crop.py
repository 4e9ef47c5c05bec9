"""Face crops for the refiner: a similarity transform per frame from the placed face vertices.

The crop is upright (the eye line horizontal) and ends below the chin. It keeps the face at its
own resolution whenever the crop can hold at least the lower face (eye line to chin), reaching
up to the brows when there is room, so lips and teeth are refined without being resampled
smaller; only a face too large for that is scaled down (never up). The refined result goes back
into the frame as a difference, so pixels the refiner leaves alone are never resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


RIGHT_EYE = (33, 133)  # corners, MediaPipe indices
LEFT_EYE = (362, 263)
CHIN = 152
MIN_SPAN = 1.05  # the least the crop covers, in eye-to-chin distances: the lower face
BELOW_CHIN = 0.2  # the crop's bottom, in eye-to-chin distances below the chin
FACE_CENTRE = 0.3  # a crop with room for the whole face is centred this far below the eyes
EDGE_PX = 8  # the refined difference fades to zero over this many pixels at the crop's border


@dataclass(frozen=True)
class FaceCrop:
    """One frame's crop: `matrix` maps image pixels to crop pixels."""

    matrix: np.ndarray  # (2, 3)
    size: int

    def cut(self, frame: np.ndarray) -> np.ndarray:
        """The crop of a full frame (same dtype)."""
        return cv2.warpAffine(frame, self.matrix, (self.size, self.size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)

    def points(self, points: np.ndarray) -> np.ndarray:
        """Image points (N, >=2) -> crop points (N, 2)."""
        return points[:, :2] @ self.matrix[:, :2].T + self.matrix[:, 2]

    def paste_difference(self, frame: np.ndarray, difference: np.ndarray) -> np.ndarray:
        """Add a crop-space difference (S, S, 3 float) to a full frame (RGB uint8).

        Only the frame's box under the crop is resampled and changed; the rest is copied."""
        height, width = frame.shape[:2]
        faded = difference * edge_taper(self.size)[..., None]
        x0, y0, x1, y1 = self.frame_box(width, height)
        out = frame.copy()
        if x1 <= x0 or y1 <= y0:
            return out
        shifted = self.matrix + np.array([[0, 0, self.matrix[0, 0] * x0 + self.matrix[0, 1] * y0], [0, 0, self.matrix[1, 0] * x0 + self.matrix[1, 1] * y0]])
        back = cv2.warpAffine(faded, shifted, (x1 - x0, y1 - y0), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC, borderValue=0)
        out[y0:y1, x0:x1] = np.clip(frame[y0:y1, x0:x1] + back + 0.5, 0, 255).astype(np.uint8)
        return out

    def frame_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the frame pixels the crop square covers (with the cubic kernel's reach)."""
        inverse = cv2.invertAffineTransform(self.matrix)
        corners = np.array([[0, 0], [self.size, 0], [0, self.size], [self.size, self.size]], np.float64) - 0.5
        points = corners @ inverse[:, :2].T + inverse[:, 2]
        x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + 3, [width, height])
        return int(x0), int(y0), int(x1), int(y1)


def face_crop(vertices: np.ndarray, size: int) -> FaceCrop:
    """The crop of a face whose vertices (V, >=2) are placed in the image."""
    right_eye = vertices[list(RIGHT_EYE), :2].mean(0)
    left_eye = vertices[list(LEFT_EYE), :2].mean(0)
    eyes = (right_eye + left_eye) / 2
    dx, dy = left_eye - right_eye
    angle = np.arctan2(dy, dx)
    span = max(np.linalg.norm(vertices[CHIN, :2] - eyes), 4.0)
    side = max(float(size), MIN_SPAN * span)  # image pixels the crop covers
    scale = size / side
    cos, sin = np.cos(angle), np.sin(angle)
    down = np.array([-sin, cos])  # the face's downward direction in the image
    centre = eyes + down * max((1 + BELOW_CHIN) * span - side / 2, FACE_CENTRE * span)
    rotation = scale * np.array([[cos, sin], [-sin, cos]])
    offset = size / 2 - rotation @ centre
    return FaceCrop(np.hstack([rotation, offset[:, None]]).astype(np.float64), size)


def edge_taper(size: int) -> np.ndarray:
    """(S, S) weights: 1 inside, falling smoothly to 0 at the border."""
    ramp = np.clip(np.minimum(np.arange(size), np.arange(size)[::-1]) / EDGE_PX, 0, 1)
    ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return np.outer(ramp, ramp).astype(np.float32)


def mouth_masks(lips: np.ndarray, inner_lips: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, S) float masks from crop-space lip points: the mouth opening, and the lip area with a margin.

    Args:
        lips: (40, 2) all lip contour points; inner_lips: (20, 2) the inner contour in order.
    """
    opening = np.zeros((size, size), np.uint8)
    cv2.fillPoly(opening, [np.round(inner_lips).astype(np.int32)], 1)
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(np.round(lips).astype(np.int32)), 1)
    width = np.ptp(lips[:, 0])
    margin = max(3, int(0.25 * width))
    region = cv2.dilate(region, np.ones((2 * margin + 1,) * 2, np.uint8))
    region = cv2.GaussianBlur(region.astype(np.float32), (0, 0), margin / 2)
    return opening.astype(np.float32), region

