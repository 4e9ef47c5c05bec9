"""Shut eyes for people whose clip shows few: the person's own open eye, its lids closed.

The eye memory (render/eyes.py) can only paste eyes the clip showed. A clip with one blink, or
none, gives a blink in the motion nothing shut to paste: the nearest patch is an open eye a little
lowered. So where the drawn eyes are more shut than the patch chosen for them (head angle and
brows choose it), the patch's lids are closed that far as it is pasted: in each column between an
eye's corners the upper lid's edge (with its lashes) comes down onto the lower lid, which rises a
little to meet it; the lid skin above the edge stretches over the eyeball (the crease stays where
it was) and takes the colour of the skin under the eye; what is left of the eyeball keeps its
place under the lid. The skin, lashes, make-up, light and glasses are the person's own, because
the pixels are theirs; a patch of the clip's own blink, already shut, is pasted as it is.
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
UNDER_EYE = (0.5, 1.5)  # the skin whose light a shut lid takes: this far under the lower lid, in widest openings
FULLY_SHUT_AT = 0.8  # drawn eyes this far towards the person's blink are shut whole (a blink's deepest frames
# hold the lids shut; at 0.9 of the way a tenth of the eye stayed open and the tracker read the lids at 0.43 of open)
EYELIDS_VERSION = 5  # in the eye memory's and the refiner's cache keys: a change here rebuilds them
KEY_CHUNK = 2048  # frames whose face vertices are made at once (about 40 kB a frame)


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
        margin = min(LASH_BAND * widest, 0.9 * band)  # a brow close above leaves some lid to stretch
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
    """Give the lid skin that now covers each eyeball the colour and light of the skin under the
    eye, keeping its own fine texture (lashes, creases, pores).

    The skin stretched down is the lid's, often in the brow's shadow or a deep fold: on deep-set
    or hooded eyes it came out as dark as the open eye had been (the face tracker read such a shut
    eye as open: 0.23 of the lid gap where other patches of the same clip read 0.06), and brightened
    by a gain it kept the shadow's grey. A shut lid faces the light as the cheek under the eye does:
    its smooth part is moved to that skin's mean colour, by the share it is closed."""
    height, width = patch.shape[:2]
    weight = np.zeros((height, width), np.float32)
    colour = np.zeros((height, width, 3), np.float32)
    rows = np.arange(height)[:, None]
    for xs, covers, bottom, widest in shades:
        below = (rows >= bottom + UNDER_EYE[0] * widest) & (rows < bottom + UNDER_EYE[1] * widest)
        skin_pixels = patch[:, xs][below].reshape(-1, 3).astype(np.float64)
        if len(skin_pixels) < 4:
            continue
        area = np.zeros((height, width), np.float32)
        area[:, xs] = covers
        weight = np.maximum(weight, area)
        colour[area > 0] = skin_pixels.mean(0)
    if not weight.any():
        return closed
    sigma = max(1.5, 0.5 * max(widest for _, _, _, widest in shades))
    image = closed.astype(np.float32)
    # the lid's own smooth colour, read from the lid alone: the dark lash line beside it neither
    # darkens that mean nor is washed out by the shift (which stays on the lid)
    inside = cv2.GaussianBlur(weight, (0, 0), sigma)
    smooth = cv2.GaussianBlur(image * weight[..., None], (0, 0), sigma) / np.maximum(inside, 1e-3)[..., None]
    soft = cv2.GaussianBlur(weight, (0, 0), 1.0) * weight
    shift = (colour - smooth) * (soft * share)[..., None]
    return np.clip(image + shift + 0.5, 0, 255).astype(np.uint8)


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


def patch_openness(points: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(N, P, 2) region landmarks of N patches -> (N,) lid gap over eye width, both eyes' mean."""
    row = {int(index): position for position, index in enumerate(region)}
    ratios = []
    for (upper, lower), (inner, outer) in zip(topology.EYE_LIDS, topology.EYE_CORNERS):
        gap = np.linalg.norm(points[:, row[upper]] - points[:, row[lower]], axis=-1)
        ratios.append(gap / np.maximum(np.linalg.norm(points[:, row[inner]] - points[:, row[outer]], axis=-1), 1e-6))
    return np.mean(ratios, axis=0)


def eye_openness_signed(model, expression: np.ndarray) -> np.ndarray:
    """(M,) the signed lid gap over eye width of the model's frontal face at (M, K) expressions."""
    return topology.eye_openness(model.vertices(np.asarray(expression, np.float64))[:, model.landmark_index], signed=True)


def model_closing_share(model, expression: np.ndarray, closing: np.ndarray) -> float:
    """The share of the lid gap the person's blink (`closing`) closes on their face model, at the
    median of the clip's (N, K) `expression`s (Face Mesh reads real shut lids at 0.03-0.4 of
    open, so a model blink made from them closes the model's lids only that far)."""
    base = np.median(np.asarray(expression, np.float64), 0)
    rest, closed = eye_openness_signed(model, np.stack([base, base + closing]))
    return float(np.clip(1 - closed / rest, 0.05, 1.0)) if rest > 1e-6 else 1.0


def closure_shares(model, expression: np.ndarray, closing_share: float) -> np.ndarray:
    """(T,) how much of the person's blink the eyes of T frames of (T, K) `expression` show: 0 as
    open as the median frame, 1 as shut as the blink at its deepest on the face model, more where
    they are more shut (`shut_whole` turns it into how far to shut a patch)."""
    gaps = np.concatenate([eye_openness_signed(model, expression[start : start + KEY_CHUNK]) for start in range(0, len(expression), KEY_CHUNK)] or [np.zeros(0)])
    rest = float(np.median(gaps)) if len(gaps) else 0.0
    if rest <= 1e-6:
        return np.zeros(len(expression), np.float32)
    return np.maximum((1 - gaps / rest) / closing_share, 0).astype(np.float32)


def shut_whole(shares: np.ndarray) -> np.ndarray:
    """Blink shares (`closure_shares`) -> how far to shut a patch, 0 to 1: whole from FULLY_SHUT_AT on."""
    return np.minimum(shares / FULLY_SHUT_AT, 1).astype(np.float32)
