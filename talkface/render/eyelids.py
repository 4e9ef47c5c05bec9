"""Closed eyes for people whose clip shows few: the person's own open eye, its lids closed.

The eye memory (render/eyes.py) can only paste eyes the clip showed. A clip with one blink, or
none, gives a blink in the motion nothing shut to paste: the nearest patch is an open eye a little
lowered. So at finetune, a few of the clip's open-eyed patches, chosen across its head angles, are
closed in steps: in each column between an eye's corners the upper lid's edge (with its lashes)
is brought down onto the lower lid, which rises a little to meet it; the lid skin above the edge
stretches over the eyeball (the crease stays where it was), and what is left of the eyeball keeps
its place under the lid. The skin, lashes, make-up, light and glasses are the person's own,
because the pixels are theirs. Each closed patch is keyed as the person's own blink would key it
(the source frame's expression plus that share of the blink's deepest change), so the memory's
choice (`RegionMemory.select`) takes it where the motion closes the eyes and the clip has nothing
closer; made patches cost a little more than real ones, so a clip's own blinks still come first.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.face import topology

# (outer corner, inner corner, upper lid from outer to inner, lower lid from outer to inner), Face Mesh indices
EYES = (
    (33, 133, (246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155)),  # the subject's right
    (263, 362, (466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382)),  # left
)
LOWER_RISE = 0.15  # a shut lower lid has risen this share of the eye's opening (column by column)
LID_BAND = 1.0  # the lid skin stretched over the eyeball: this many times the eye's widest opening above its edge
BROW_CLEARANCE = 0.4  # ... but no more than this share of the way up to the brow
LASH_BAND = 0.3  # the lid's edge with its lashes, this many widest openings tall, moves down unstretched
LOWER_BAND = 0.5  # the skin under the lower lid that makes room for its rise, in widest openings
LEVELS = (0.3, 0.55, 0.8, 1.0)  # shares of a whole closure made for each source patch
UNDER_EYE = (0.5, 1.5)  # the skin whose light a shut lid takes: this far under the lower lid, in widest openings
MAX_LID_GAIN = 1.6  # at most this much brighter
SOURCES = 6  # open-eyed patches closed, spread over the clip's head angles


def lid_contours(points: np.ndarray, region: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each eye, the rows of `points` (the memory's region landmarks, (P, 2)) that are its upper
    lid, its lower lid (both with the corners) and its corners."""
    row = {int(index): position for position, index in enumerate(region)}
    eyes = []
    for outer, inner, upper, lower in EYES:
        corners = np.array([row[outer], row[inner]])
        eyes.append((np.array([row[i] for i in (outer, *upper, inner)]), np.array([row[i] for i in (outer, *lower, inner)]), corners))
    return eyes


def _along(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The contour through `points` (N, 2), read at columns `xs` (piecewise linear in x)."""
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def close_lids(patch: np.ndarray, points: np.ndarray, region: np.ndarray, share: float) -> np.ndarray:
    """(H, W, 3) upright eye patch (eyes level, y down) -> the same with both eyes `share` closed
    (0: as it is, 1: shut). `points`: (P, 2) the patch's region landmarks, in `region`'s order."""
    height, width = patch.shape[:2]
    map_y = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, 1)
    rows = np.arange(height, dtype=np.float64)[:, None]
    brows = points[len(topology.eye_indices()) :]
    shades = []
    for upper, lower, corners in lid_contours(points, region):
        x0, x1 = np.sort(points[corners, 0])
        xs = np.arange(max(int(np.ceil(x0)), 0), min(int(np.floor(x1)), width - 1) + 1)
        if len(xs) < 2:
            continue
        top, bottom = _along(points[upper], xs), _along(points[lower], xs)
        opening = np.maximum(bottom - top, 0)
        widest = float(opening.max())
        if widest < 1:
            continue
        meet = bottom - LOWER_RISE * opening
        edge, low = top + share * (meet - top), bottom + share * (meet - bottom)
        over = brows[(brows[:, 0] >= x0) & (brows[:, 0] <= x1), 1] if len(brows) else np.zeros(0)
        band = LID_BAND * widest
        if len(over):
            band = min(band, BROW_CLEARANCE * max(float(top.min() - over.max()), 1.0))
        anchor = top - band
        below = LOWER_BAND * widest
        column = np.repeat(rows, len(xs), 1)
        source = column.copy()
        margin = LASH_BAND * widest
        lashes = (column >= edge - margin) & (column < edge)  # the lid's edge and lashes, moved down whole
        source = np.where(lashes, column - (edge - top), source)
        lid = (column >= anchor) & (column < edge - margin)  # the lid's skin above them, stretched from [anchor, top - margin)
        stretch = (top - margin - anchor) / np.maximum(edge - margin - anchor, 1e-6)
        source = np.where(lid, anchor + (column - anchor) * stretch, source)
        under = (column >= low) & (column < bottom + below)  # the skin under the eye, squeezed to make room
        squeeze = below / np.maximum(bottom + below - low, 1e-6)
        source = np.where(under, bottom + (column - low) * squeeze, source)
        map_y[:, xs] = source.astype(np.float32)
        covers = (column >= top) & (column < edge - margin)  # lid skin where the eyeball was
        if covers.any():
            shades.append((xs, covers, bottom, widest))
    map_x = np.repeat(np.arange(width, dtype=np.float32)[None], height, 0)
    closed = cv2.remap(patch, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return _lit_like_skin(closed, patch, shades, share) if shades else closed


def _lit_like_skin(closed: np.ndarray, patch: np.ndarray, shades: list, share: float) -> np.ndarray:
    """Brighten the lid skin that now covers each eyeball to the light of the skin under the eye.

    The skin stretched down is the lid's, often in the brow's shadow or a deep fold: on deep-set
    or hooded eyes it came out as dark as the open eye had been, and the face tracker read such a
    shut eye as open (0.23 of the lid gap where other patches of the same clip read 0.06). A shut
    lid faces the light as the cheek under the eye does; it is only ever brightened, by the
    share it is closed."""
    height, width = patch.shape[:2]
    weight = np.zeros((height, width), np.float32)
    gain_map = np.ones((height, width, 3), np.float32)
    for xs, covers, bottom, widest in shades:
        rows = np.arange(height)[:, None]
        below = (rows >= bottom + UNDER_EYE[0] * widest) & (rows < bottom + UNDER_EYE[1] * widest)
        lid_pixels = closed[:, xs][covers].reshape(-1, 3).astype(np.float64)
        skin_pixels = patch[:, xs][below].reshape(-1, 3).astype(np.float64)
        if len(lid_pixels) < 4 or len(skin_pixels) < 4:
            continue
        gain = np.clip(skin_pixels.mean(0) / np.maximum(lid_pixels.mean(0), 1.0), 1.0, MAX_LID_GAIN)
        area = np.zeros((height, width), np.float32)
        area[:, xs] = covers
        weight = np.maximum(weight, area)
        gain_map[area > 0] = gain
    if not weight.any():
        return closed
    soft = cv2.GaussianBlur(weight, (0, 0), 1.5)[..., None] * share
    gain_map = cv2.GaussianBlur(gain_map, (0, 0), 1.5)
    return np.clip(closed * (1 + soft * (gain_map - 1)) + 0.5, 0, 255).astype(np.uint8)


def closed_points(points: np.ndarray, region: np.ndarray, share: float) -> np.ndarray:
    """(P, 2) region landmarks with each eye's lids moved `share` of the way to shut, as
    `close_lids` moves them."""
    moved = points.astype(np.float64).copy()
    for upper, lower, corners in lid_contours(points, region):
        top, bottom = points[upper[1:-1]], points[lower[1:-1]]
        opposite_bottom = _along(points[lower], top[:, 0])
        opposite_top = _along(points[upper], bottom[:, 0])
        meet_top = opposite_bottom - LOWER_RISE * np.maximum(opposite_bottom - top[:, 1], 0)
        meet_bottom = bottom[:, 1] - LOWER_RISE * np.maximum(bottom[:, 1] - opposite_top, 0)
        moved[upper[1:-1], 1] = top[:, 1] + share * (meet_top - top[:, 1])
        moved[lower[1:-1], 1] = bottom[:, 1] + share * (meet_bottom - bottom[:, 1])
    return moved.astype(points.dtype)


def pick_sources(openness: np.ndarray, angles: np.ndarray, count: int = SOURCES) -> np.ndarray:
    """Indices of up to `count` patches to close: open-eyed ones (at least the median openness),
    spread over the head angles (`angles`: (N, 2) pitch and yaw), the first the most frontal."""
    candidates = np.flatnonzero(openness >= np.nanmedian(openness))
    if len(candidates) == 0:
        return candidates
    spread = angles[candidates] - np.median(angles[candidates], 0)
    chosen = [int(np.argmin((spread**2).sum(1)))]
    distance = ((spread - spread[chosen[0]]) ** 2).sum(1)
    while len(chosen) < min(count, len(candidates)):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, ((spread - spread[chosen[-1]]) ** 2).sum(1))
    return candidates[np.array(chosen)]


EYELIDS_VERSION = 1  # in the eye memory's cache key: a change here rebuilds it
MADE_GAP = 2  # made patches are numbered this far apart after the clip's last frame: each its own run


def patch_openness(points: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(N, P, 2) region landmarks of N patches -> (N,) lid gap over eye width, both eyes' mean."""
    row = {int(index): position for position, index in enumerate(region)}
    ratios = []
    for (upper, lower), (inner, outer) in zip(topology.EYE_LIDS, topology.EYE_CORNERS):
        gap = np.linalg.norm(points[:, row[upper]] - points[:, row[lower]], axis=-1)
        ratios.append(gap / np.maximum(np.linalg.norm(points[:, row[inner]] - points[:, row[outer]], axis=-1), 1e-6))
    return np.mean(ratios, axis=0)


def with_closed_lids(model, expression: np.ndarray, pose: np.ndarray, closing: np.ndarray, memory: tuple, key_parts, region: np.ndarray) -> tuple:
    """A memory's (patches, points, rows, key parts) with closed eyes added: SOURCES open-eyed
    patches, each closed at every share of LEVELS. Returns (patches, points, rows, parts, made).

    `closing`: (K,) the person's blink at its deepest (expression change); `key_parts(expression,
    pose)`: the memory's unscaled key parts of (M, K) expressions and (M, 6) poses. A made
    patch's key is its source frame's expression plus the level's share of `closing`; its
    landmarks are moved as far as the person's face model moves them for that blink, so the
    paste fits the drawn eyes."""
    patches, points, rows, parts = memory
    sources = pick_sources(patch_openness(points, region), pose[rows, :2])
    made_patches, made_points, made_expression, made_pose = [], [], [], []
    for source in sources:
        base = np.asarray(expression[rows[source]], np.float64)
        gaps = eye_openness_signed(model, np.stack([base, base + closing]))
        shut = float(np.clip(1 - gaps[1] / gaps[0], 0, 1)) if gaps[0] > 1e-6 else 1.0  # the share of the lid gap the blink closes in the model
        for level in LEVELS:
            made_patches.append(close_lids(patches[source], points[source], region, level))
            made_points.append(closed_points(points[source], region, level * shut))
            made_expression.append(base + level * closing)
            made_pose.append(pose[rows[source]])
    if not made_patches:
        return patches, points, rows, parts, np.zeros(len(rows), bool)
    made_rows = rows[-1] + MADE_GAP * np.arange(1, len(made_patches) + 1)
    made_parts = key_parts(np.asarray(made_expression, np.float32), np.asarray(made_pose, np.float32))
    made = np.r_[np.zeros(len(rows), bool), np.ones(len(made_patches), bool)]
    return (
        list(patches) + made_patches,
        np.concatenate([points, np.asarray(made_points, points.dtype)]),
        np.concatenate([rows, made_rows]),
        tuple(np.concatenate([part, extra]) for part, extra in zip(parts, made_parts)),
        made,
    )


def eye_openness_signed(model, expression: np.ndarray) -> np.ndarray:
    """(M,) the signed lid gap over eye width of the model's frontal face at (M, K) expressions."""
    return topology.eye_openness(model.vertices(np.asarray(expression, np.float64))[:, model.landmark_index], signed=True)
