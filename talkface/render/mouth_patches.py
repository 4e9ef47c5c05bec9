"""The person's own lips and teeth, replayed from their clip.

The face texture holds one closed mouth, so a rendered opening shows stretched lips around a
dark hole, and the refiner, reading a mix of remembered mouths, draws soft teeth. Instead, the
mouth (both lips and what the opening shows: teeth, tongue) of every output frame is taken
from a frame of the person's clip whose lip shape and head angle match, chosen for the whole
motion at once like the eyes (`talkface.render.eyes`), warped so its lips land on the rendered
lips (a similarity, then each lip point's remainder carried smoothly over the patch) and
blended in under a soft mask over the lips. Its light is matched on the lips, not the opening,
so teeth keep their brightness.

Drawn where no refiner draws the mouth (`--no-refine`, profiles without a refiner, and `dub` likewise).
Under the refiner they were measured and left out: trained and run on coarse frames with these
mouths, it smoothed them back (mouth sharpness on the Obama test 0.72 coarse, 0.59 refined, 0.63
with the texture's mouth refined) and its face's detail band fell 0.04-0.05 (realism.md, `teeth`).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from talkface.face import topology
from talkface.face.geometry import similarity_matrix
from talkface.face.model import MorphableModel
from talkface.render.composite import INNER_LIPS
from talkface.render.eyes import RegionMemory, soft_hulls

MOUTH_FORMAT = 1
MOUTH_FILE = "mouth_patches.npz"
PATCH_SIZE = (1.5, 1.0)  # (width, height) of a stored patch, in eye distances, centred on the lips
PART_WEIGHTS = (1.0, 1.0, 0.5)  # lip shape, opening and head angle in the keys, each part of unit spread
SWITCH_COST = 0.3  # lower than the eyes': a mouth changes shape every few frames (the demo's 11 s: 137 run changes
# in 275 frames; 1.0 held runs of mismatched openings, tracked opening r 0.92 against the motion's, 0.3: 0.94)
GAPS = (82, 87, 13, 14, 312, 317, 81, 178, 311, 402)  # (upper, lower) inner lip pairs across the opening
MASK_GROW = 0.1  # the blend mask reaches this far past the outer lips, in eye distances: the skin just around
# them moves with them (the Obama onto's coarse mouth, as sharp as the real one: 0.62 at 0.05, 0.64 at 0.15, 0.65 at
# 0.25, 0.72 at 0.25 without cross-fades; but at 0.25 the still skin beside the mouth flickered 1.03-1.05x the real)
MASK_SOFTNESS = 0.04  # and fades over this, in eye distances
SHIFT_REACH = 0.1  # a lip point's remaining shift carries this far (Gaussian sigma), in mouth widths
SHIFT_SMOOTHING = 0.01  # ridge on the interpolation (points nearly on top of each other share a shift)


@functools.lru_cache(maxsize=1)
def _inner_ring() -> np.ndarray:
    """Positions of the inner lip ring (in ring order) among the region's landmarks."""
    region = topology.lip_indices().tolist()
    return np.array([region.index(i) for i in INNER_LIPS])


class MouthPatches(RegionMemory):
    """Upright patches of the clip's mouth (lips, teeth, tongue), addressed by lip shape and head angle."""

    FORMAT = MOUTH_FORMAT
    FILE = MOUTH_FILE
    PART_WEIGHTS = PART_WEIGHTS
    LEGACY_PART_WEIGHTS = PART_WEIGHTS
    PATCH_SIZE = PATCH_SIZE
    SWITCH_COST = SWITCH_COST
    FADE_LIMIT = 0.0  # no cross-fades: two mouths mixed are a blurred, doubled one
    NAME = "mouth"

    @staticmethod
    def region() -> np.ndarray:
        return topology.lip_indices()

    @staticmethod
    def key_parts(model: MorphableModel, expression: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, ...]:
        """(T, 80) the 40 lip points in the frontal face relative to the mouth corners' midpoint,
        (T, 5) the opening (the inner lips' gaps, signed) and (T, 2) head pitch and yaw."""
        vertices = model.vertices(np.asarray(expression, np.float64))
        points = vertices[:, model.landmark_index[np.r_[topology.lip_indices(), topology.MOUTH_LEFT, topology.MOUTH_RIGHT]], :2]
        centre = points[:, -2:].mean(1, keepdims=True)
        gaps = vertices[:, model.landmark_index[list(GAPS)], 1]
        return (points[:, :-2] - centre).reshape(len(points), -1), gaps[:, 0::2] - gaps[:, 1::2], np.asarray(pose, np.float64)[:, :2]

    @staticmethod
    def patch_matrix(landmarks: np.ndarray, distance: float, size: tuple[int, int]) -> np.ndarray:
        """(2, 3) similarity from the image to an upright patch (the eye line level) centred on the
        lips, in which the eyes are `distance` apart."""
        right, left = topology.eye_centres(landmarks)
        line = left - right
        length = max(float(np.linalg.norm(line)), 1e-6)
        cos, sin = line / length
        rotation = distance / length * np.array([[cos, sin], [-sin, cos]])
        centre = landmarks[topology.lip_indices(), :2].mean(0)
        offset = np.array(size, np.float64) / 2 - rotation @ centre
        return np.hstack([rotation, offset[:, None]])

    @staticmethod
    def maps(source: np.ndarray, target: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where in a patch with lip points `source` each box pixel (`grid`, (2, H, W)) reads from,
        so the patch's lips land on the `target` lips: a similarity fitted on all lip points, then
        the points' remaining offsets interpolated (Gaussian radial basis, exact at the points up
        to SHIFT_SMOOTHING, fading to none away from the lips)."""
        inverse = cv2.invertAffineTransform(similarity_matrix(source, target))  # box -> patch
        map_x = inverse[0, 0] * grid[0] + inverse[0, 1] * grid[1] + inverse[0, 2]
        map_y = inverse[1, 0] * grid[0] + inverse[1, 1] * grid[1] + inverse[1, 2]
        wanted = target @ inverse[:, :2].T + inverse[:, 2]  # the target lips, in the patch
        sigma = SHIFT_REACH * max(float(np.ptp(source[:, 0])), 1.0)
        kernel = lambda dx, dy: np.exp(-(dx**2 + dy**2) / (2 * sigma**2))  # noqa: E731
        between = kernel(wanted[:, None, 0] - wanted[None, :, 0], wanted[:, None, 1] - wanted[None, :, 1])
        coefficients = np.linalg.solve(between + SHIFT_SMOOTHING * np.eye(len(wanted)), source - wanted)
        weights = kernel(map_x[..., None] - wanted[:, 0], map_y[..., None] - wanted[:, 1])
        shift = weights @ coefficients
        return (map_x + shift[..., 0]).astype(np.float32), (map_y + shift[..., 1]).astype(np.float32)

    @staticmethod
    def mask(points: np.ndarray, size: tuple[int, int], distance: float) -> np.ndarray:
        return soft_hulls([points], size, MASK_GROW * distance, MASK_SOFTNESS * distance)

    @staticmethod
    def reach(distance: float) -> float:
        return MASK_GROW * distance + 3 * MASK_SOFTNESS * distance + 2

    @staticmethod
    def light_mask(solid: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The lips and the skin at their edge, not the opening (teeth would be dimmed to the
        rendered dark hole's light)."""
        lips = solid.copy()
        cv2.fillPoly(lips, [np.round(target[_inner_ring()]).astype(np.int32)], 0)
        return lips
