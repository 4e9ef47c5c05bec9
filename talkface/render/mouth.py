"""A photo's own teeth inside a rendered mouth, carried by the lips instead of stretched.

A photo profile has no mouth memory and no refiner: the mouth the face model opens is a dark
hole. When the photo shows teeth, they are cut out once (the opening parted where its teeth meet:
the upper part with the upper lip, the lower with the lower lip) and pasted into every rendered opening, each half
moving, turning and scaling with its lip, and clipped by the opening, so a closing mouth hides
them behind the lips as a real one does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import median_filter

from talkface.errors import CacheError
from talkface.face.topology import LOWER_INNER_LIP, MOUTH_LEFT, MOUTH_RIGHT, UPPER_INNER_LIP
from talkface.storage import read_weights, save_weights

MIN_GAP_PX = 3.0  # a photo whose lips are closer than this shows no teeth worth pasting
MARGIN_PX = 2
GENERIC_MOUTH_PATH = Path(__file__).resolve().parents[1] / "weights" / "generic_mouth.safetensors"
LIGHT_LIMITS = (0.6, 1.2)  # the borrowed mouth's brightness follows the photo's within these
SPLIT_BAND = (0.25, 0.75)  # the share of each column's opening its teeth are parted in (`_upper_part`)
MIN_SPLIT_ROWS = 4  # a column with fewer rows of opening parts at the middle
SPLIT_DARK = 0.75  # a column parts at its darkest row only where that is this much darker than its middle's median
SPLIT_SMOOTH = 0.08  # of the opening's box width: the parting line's median window (and twice its Gaussian's sigma)


class PhotoMouth:
    """The inside of a photo's open mouth, split at the middle of the opening into two patches."""

    def __init__(self, photo: np.ndarray, landmarks: np.ndarray, ring: tuple[int, ...], gain: np.ndarray | float = 1.0):
        """Args: photo RGB uint8; landmarks (>=478, 2+) pixels of the face in it; ring: the inner
        lip contour's landmark indices in order; gain: per-channel light applied to the patches
        (a mouth borrowed from another face, matched to this one)."""
        points = landmarks[:, :2].astype(np.float64)
        top, bottom = points[UPPER_INNER_LIP], points[LOWER_INNER_LIP]
        self.width = float(np.linalg.norm(points[MOUTH_RIGHT] - points[MOUTH_LEFT]))
        self.angle = _angle(points)
        polygon = np.round(points[list(ring)]).astype(np.int32)
        x0, y0 = np.maximum(polygon.min(0) - MARGIN_PX, 0)
        x1, y1 = np.minimum(polygon.max(0) + MARGIN_PX + 1, [photo.shape[1], photo.shape[0]])
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [polygon - [x0, y0]], 1)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        down = (bottom - top) / max(np.linalg.norm(bottom - top), 1e-6)
        depth = ((xs - top[0]) * down[0] + (ys - top[1]) * down[1]) / max(np.linalg.norm(bottom - top), 1e-6)
        upper = _upper_part(photo[y0:y1, x0:x1], mask, depth)
        self.patches = []
        for half, anchor in ((upper, top), (~upper, bottom)):
            alpha = (mask & half).astype(np.float32)
            rgba = np.dstack([np.clip(photo[y0:y1, x0:x1].astype(np.float32) * gain, 0, 255), alpha])
            self.patches.append((rgba, anchor - [x0, y0]))
        self.usable = bool(np.linalg.norm(bottom - top) >= MIN_GAP_PX and mask.any())

    def paste(self, colours: np.ndarray, opening: np.ndarray, vertices: np.ndarray) -> None:
        """Draw the teeth into `colours` (H, W, 3 float32, changed in place) where `opening`
        (H, W uint8: the rendered mouth's hole) is set; `vertices` (V, 2+) pixels in the same box."""
        if not self.usable or not opening.any():
            return
        points = vertices[:, :2].astype(np.float64)
        scale = float(np.linalg.norm(points[MOUTH_RIGHT] - points[MOUTH_LEFT])) / max(self.width, 1e-6)
        turn = np.degrees(_angle(points) - self.angle)
        x0, y0, width, height = cv2.boundingRect(opening)  # only the opening is drawn into
        hole = opening[y0 : y0 + height, x0 : x0 + width]
        region = colours[y0 : y0 + height, x0 : x0 + width]
        for (rgba, anchor), target in zip(self.patches, (points[UPPER_INNER_LIP], points[LOWER_INNER_LIP])):
            matrix = cv2.getRotationMatrix2D((float(anchor[0]), float(anchor[1])), -turn, scale)
            matrix[:, 2] += target - anchor - [x0, y0]
            moved = cv2.warpAffine(rgba, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)  # bilinear blurs the teeth
            alpha = np.clip(moved[..., 3], 0, 1) * hole
            region += alpha[..., None] * (moved[..., :3] - region)


def _upper_part(crop: np.ndarray, mask: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(h, w) bool: the part of the opening (`mask`, uint8) that moves with the upper lip. Each
    column parts at its darkest row within the middle of its opening (SPLIT_BAND: where the upper
    and lower teeth meet, or the dark between them) where that row is clearly dark (SPLIT_DARK), the
    line smoothed across columns; a column without one, or that the opening barely spans, parts at
    the middle (`depth` 0.5: 0 at the upper lip, 1 at the lower).
    Parted along a straight line at the middle, teeth longer than half the opening were cut square."""
    height, width = mask.shape
    grey = cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    middle = np.argmin(np.abs(depth - 0.5), axis=0).astype(np.float64)  # each column's row at depth 0.5
    parting = middle.copy()
    for x in range(width):
        inside = np.flatnonzero(mask[:, x])
        if len(inside) >= MIN_SPLIT_ROWS:
            low, high = inside[0] + int(SPLIT_BAND[0] * len(inside)), inside[0] + int(np.ceil(SPLIT_BAND[1] * len(inside)))
            band = grey[low : high + 1, x]
            if band.min() < SPLIT_DARK * np.median(band):  # a clearly darker row: where the teeth meet
                parting[x] = low + int(np.argmin(band))
    size = max(5, int(SPLIT_SMOOTH * width) | 1)  # odd; a small mouth's teeth part along a line as smooth as a large one's
    parting = median_filter(parting, size=size, mode="nearest")
    parting = cv2.GaussianBlur(parting[None].astype(np.float32), (0, 0), max(1.0, SPLIT_SMOOTH * width / 2))[0] if width > 1 else parting
    return (np.arange(height)[:, None] < parting[None, :]) & (mask > 0)


def _angle(points: np.ndarray) -> float:
    """Radians of the line from the left to the right mouth corner."""
    dx, dy = points[MOUTH_RIGHT] - points[MOUTH_LEFT]
    return float(np.arctan2(dy, dx))


@dataclass(frozen=True)
class GenericMouth:
    """An open mouth showing teeth, from a corpus clip (scripts/generic_mouth.py), for photos
    whose own mouth is closed.

    Attributes:
        image: RGB uint8 crop around the mouth; landmarks: (478, 3) float32 pixels in the crop;
        meta: where it came from (clip, checksum, source and licence).
    """

    image: np.ndarray
    landmarks: np.ndarray
    meta: dict

    def for_face(self, photo: np.ndarray, landmarks: np.ndarray, ring: tuple[int, ...]) -> PhotoMouth:
        """The mouth with its brightness matched to the photo's face (within LIGHT_LIMITS) and its
        colours to the photo's lack of them (`in_photo_colours`: grey in a black-and-white photo,
        tinted in a sepia one)."""
        gain = float(np.clip(_highlight(photo, landmarks) / max(_highlight(self.image, self.landmarks), 1.0), *LIGHT_LIMITS))
        return PhotoMouth(in_photo_colours(self.image, self.landmarks, photo, landmarks), self.landmarks, ring, gain)

    def save(self, path: Path) -> None:
        save_weights(path, {"image": self.image, "landmarks": self.landmarks.astype(np.float32)}, {"meta": json.dumps(self.meta)})

    @classmethod
    def load(cls, path: Path = GENERIC_MOUTH_PATH) -> "GenericMouth":
        """CacheError naming the file and the fix if it is missing or damaged."""
        from safetensors import SafetensorError

        fix = "reinstall talkface, or rebuild it with `python scripts/generic_mouth.py`"
        try:
            arrays, metadata = read_weights(path)
            image, landmarks, meta = arrays["image"], arrays["landmarks"], json.loads(metadata["meta"])
            if image.dtype != np.uint8 or image.ndim != 3 or landmarks.shape != (478, 3):
                raise ValueError(f"image {image.dtype} {image.shape}, landmarks {landmarks.shape}")
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            raise CacheError(f"the generic mouth {path} is missing or damaged ({exc}); {fix}") from exc
        return cls(image, landmarks, meta)


def _highlight(image: np.ndarray, landmarks: np.ndarray) -> float:
    """The 95th percentile of brightness in the landmarks' box: the exposure of a face's brightest
    parts (teeth, eye whites, skin highlights), which depends on the light more than on skin tone."""
    x0, y0 = np.floor(landmarks[:, :2].min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(landmarks[:, :2].max(0)).astype(int)
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return float(np.percentile(grey, 95)) if grey.size else 255.0


def in_photo_colours(image: np.ndarray, landmarks: np.ndarray, photo: np.ndarray, photo_landmarks: np.ndarray) -> np.ndarray:
    """`image` (RGB uint8, a face at `landmarks`) with its colours taken towards a photo that has
    fewer of them: black-and-white, sepia or faded.

    In such a photo a face's chroma (Lab a, b) is nearly a function of its lightness (none in
    black-and-white, the tint's in sepia), while in a colour photo the lips, skin and eyes differ
    in hue at the same lightness. So each face's chroma is fitted as a straight line in lightness
    and what the line leaves is its colour (`_chroma`: 5-11 on colour portraits, 10.8 on the
    corpus mouth's face; 2.0 on a portrait faded to 0.3 of its saturation, 0.3 sepia, 0 grey).
    The image's chroma is carried onto the photo's line (at each pixel's lightness) with its
    colour scaled by the ratio of the two faces', as far as the photo lacks colour (all of it
    below MONOCHROME[0] of the ratio, none above MONOCHROME[1]): corpus teeth and gums in a grey
    photo come out grey, in a sepia one sepia; a colour photo's keep their colours."""
    own_line, own_colour = _chroma(image, landmarks)
    photo_line, photo_colour = _chroma(photo, photo_landmarks)
    ratio = photo_colour / max(own_colour, 1e-6)
    low, high = MONOCHROME
    share = float(np.clip((high - ratio) / (high - low), 0.0, 1.0))
    if share <= 0.0:
        return image
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    lightness = np.stack([np.ones_like(lab[..., 0]), lab[..., 0]], -1)
    carried = lightness @ photo_line + (lab[..., 1:] - lightness @ own_line) * min(ratio, 1.0)
    lab[..., 1:] += share * (carried - lab[..., 1:])
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)


MONOCHROME = (0.1, 0.3)  # a photo's face colour (`_chroma`) over the corpus mouth face's: wholly without colour below the first, in colour above the second


def _chroma(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The face's chroma (Lab a, b) within the landmarks' hull, fitted as a straight line in its
    lightness L: the line ((2, 2) float32: a, b = [1, L] @ line) and the spread it leaves (the
    root of the summed variances of a and b about it)."""
    hull = cv2.convexHull(np.round(landmarks[:468, :2]).astype(np.int32))
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[mask > 0].astype(np.float64)
    if len(lab) < 20:
        return np.zeros((2, 2), np.float32), 0.0
    lightness = np.column_stack([np.ones(len(lab)), lab[:, 0]])
    line = np.linalg.lstsq(lightness, lab[:, 1:], rcond=None)[0]
    left = lab[:, 1:] - lightness @ line
    return line.astype(np.float32), float(np.sqrt(left.var(0).sum()))
