"""A second outline beside the head's: the measure of a turned head's ghost.

When the head is turned by warping its frame, the room the head uncovers must be filled from the room;
filled from the head's own old edge, a faint copy of the outline stays beside the new one (a ghost, a
doubled edge). This measure walks the head's outline (the person matte's edge above the chin), looks
outward along each point's normal for an edge running the same way as the outline, and reports how
much of the outline is doubled: where such an edge, at least DOUBLED_SHARE as strong as the outline
itself, lies OUTSIDE_BAND px outside it, continuously along at least MIN_RUN px of the outline (a
texture in the room gives short, scattered hits; a ghost runs along the head).

Units: images are RGB uint8, mattes (H, W) float in [0, 1]; distances in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

OUTSIDE_BAND = (4, 15)  # px outside the outline where a second outline is looked for
OWN_BAND = 2  # px either side of the matte's edge where the outline's own edge is read
DOUBLED_SHARE = 0.35  # a second edge at least this share of the outline's own strength counts
VALLEY = 0.5  # and only where the edge strength between the two falls below this share of the second's
MIN_EDGE = 6.0  # grey levels per px: outline points fainter than this (head against a like room) are left out
MIN_RUN = 12  # px of outline: a doubled stretch shorter than this is taken for the room's texture
STEP_JUMP = 2  # px: neighbouring points' second edges further apart than this are not one line
POINT_SPACING = 2  # px between the outline points walked
OLD_NEAR = 3.0  # px: a second edge this near the head's old outline is that outline left behind


@dataclass(frozen=True)
class OutlineReading:
    """What `doubled_outline` found on one image.

    points: (N, 2) x, y px of the outline points read (those with an edge of their own of at least MIN_EDGE);
    distance: (N,) px outside the outline of each point's nearest second edge (nan where none counts);
    doubled: (N,) bool, the points in doubled stretches (runs of at least MIN_RUN px);
    on_old: (N,) bool, the doubled points whose second edge lies on the head's old outline (within
        OLD_NEAR px of the outline given as `old_outline`: the unturned frame's), the ghost itself.
    """

    points: np.ndarray
    distance: np.ndarray
    doubled: np.ndarray
    on_old: np.ndarray

    @property
    def share(self) -> float:
        """Share of the outline read that is doubled."""
        return float(self.doubled.mean()) if len(self.doubled) else 0.0

    @property
    def ghost_share(self) -> float:
        """Share of the outline read that is doubled by the head's old outline."""
        return float(self.on_old.mean()) if len(self.on_old) else 0.0

    @property
    def longest(self) -> float:
        """The longest doubled stretch, px of outline (0 where none reaches MIN_RUN)."""
        return float(max((len(run) for run in _runs(self.distance) if len(run) * POINT_SPACING >= MIN_RUN), default=0) * POINT_SPACING)


def head_outline(matte: np.ndarray, chin_y: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along the person matte's edge above `chin_y`, in order, and their outward unit normals.

    Args:
        matte: (H, W) person matte in [0, 1].
        chin_y: rows below this are not the head's (shoulders, the frame's lower edge).
    Returns:
        points (N, 2) and normals (N, 2), x, y in pixels; empty where the matte has no person.
    """
    solid = (matte > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(solid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2)), np.zeros((0, 2))
    contour = max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float64)[::POINT_SPACING]
    height, width = matte.shape
    inside = (contour[:, 1] < chin_y) & (contour[:, 0] > 1) & (contour[:, 0] < width - 2) & (contour[:, 1] > 1) & (contour[:, 1] < height - 2)
    smooth = cv2.GaussianBlur(matte.astype(np.float32), (0, 0), 3)
    gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    x, y = contour[:, 0].astype(int), contour[:, 1].astype(int)
    normals = -np.stack([gx[y, x], gy[y, x]], axis=1).astype(np.float64)  # the matte falls outward
    length = np.linalg.norm(normals, axis=1)
    keep = inside & (length > 1e-6)
    return contour[keep], normals[keep] / length[keep, None]


def doubled_outline(image: np.ndarray, matte: np.ndarray, chin_y: float, old_outline: np.ndarray | None = None) -> OutlineReading:
    """How much of the head's outline in `image` has a second outline beside it (module docstring).

    Args:
        image: (H, W, 3) RGB uint8.
        matte: (H, W) the person matte of `image`, in [0, 1].
        chin_y: the chin's row: the outline below it is left out.
        old_outline: optional (M, 2) x, y px, where the head's outline was before it was turned
            (`head_outline` of the unturned frame): doubled points whose second edge lies on it
            are the ghost (`on_old`).
    """
    points, normals = head_outline(matte, chin_y)
    if len(points) == 0:
        return OutlineReading(np.zeros((0, 2)), np.zeros(0), np.zeros(0, bool), np.zeros(0, bool))
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    offsets = np.arange(-OWN_BAND - 1, OUTSIDE_BAND[1] + 2, dtype=np.float64)
    where = points[:, None, :] + offsets[None, :, None] * normals[:, None, :]
    samples = cv2.remap(grey, where[..., 0].astype(np.float32), where[..., 1].astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    across = np.abs(samples[:, 2:] - samples[:, :-2]) / 2  # the edge across the outline's direction at each offset
    distance, own = _second_edges(across, offsets[1:-1])
    counted = own >= MIN_EDGE
    distance = distance[counted]
    doubled = np.zeros(len(distance), bool)
    for run in _runs(distance, with_starts=True):
        begin, length = run
        if length * POINT_SPACING >= MIN_RUN:
            doubled[begin : begin + length] = True
    on_old = np.zeros(len(distance), bool)
    if old_outline is not None and len(old_outline) and doubled.any():
        second = points[counted] + np.nan_to_num(distance)[:, None] * normals[counted]
        on_old = doubled & (_nearest(second, old_outline) <= OLD_NEAR)
    return OutlineReading(points[counted], distance, doubled, on_old)


def _nearest(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest of `others` (px)."""
    return np.sqrt(((points[:, None, :] - others[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


def _second_edges(across: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest second edge outside its own: a peak of `across` (N, K), the edge
    strength at offsets `centres` (K,) px along the normal, within OUTSIDE_BAND, at least
    DOUBLED_SHARE of the own edge (the peak within OWN_BAND of the matte's edge) and parted from
    it by a dip below VALLEY of its height (else it is the own edge's soft flank).

    Returns: distance (N,) px (nan where there is none) and the own edge's strength (N,).
    """
    near = np.abs(centres) <= OWN_BAND
    own_at = np.flatnonzero(near)[0] + across[:, near].argmax(axis=1)
    own = across[np.arange(len(across)), own_at]
    distance = np.full(len(across), np.nan)
    lowest = across.copy()  # the lowest edge strength between the own edge and each offset
    for k in range(1, len(centres)):
        lowest[:, k] = np.where(k > own_at, np.minimum(lowest[:, k - 1], across[:, k]), across[:, k])
    for k in range(1, len(centres) - 1):
        if not OUTSIDE_BAND[0] <= centres[k] <= OUTSIDE_BAND[1]:
            continue
        peak = across[:, k]
        found = (
            np.isnan(distance) & (peak >= DOUBLED_SHARE * own) & (peak >= across[:, k - 1]) & (peak >= across[:, k + 1])
            & (lowest[:, k - 1] <= VALLEY * peak) & (k > own_at)
        )
        distance[found] = centres[k]
    return distance, own


def _runs(distance: np.ndarray, with_starts: bool = False) -> list:
    """Stretches of consecutive points whose second edges lie at nearly the same distance (a line):
    their distances, or (first index, length) pairs with `with_starts`."""
    runs, begin = [], None
    for index in range(len(distance) + 1):
        value = distance[index] if index < len(distance) else np.nan
        joins = begin is not None and np.isfinite(value) and abs(value - distance[index - 1]) <= STEP_JUMP
        if begin is not None and not joins:
            runs.append((begin, index - begin) if with_starts else distance[begin:index])
            begin = None
        if begin is None and np.isfinite(value):
            begin = index
    return runs
