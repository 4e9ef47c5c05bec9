"""Brows: audio predicts them only faintly, so their part of the prediction is scaled to the person's own spread.

A ridge from speech to expression predicts brow height with little correlation (r 0.1-0.2 on
held-out speech) and, like every shrunk regression, with about half the real spread: the
rendered face stares. The brow part of the predicted expression (the change that moves the brows
with lips and eyes held still) is therefore smoothed and widened so that its spread on unseen
speech, measured by cross-validation on the clip, is the person's.
"""

from __future__ import annotations

import numpy as np

from talkface.face import topology
from talkface.face.fit import landmark_basis
from talkface.face.model import MorphableModel

BROW_GAINS = np.round(np.geomspace(0.25, 4.0, 25), 3)  # scales tried: brows widened to the person's spread, or narrowed
SMOOTH_FRAMES = 2.0  # Gaussian sigma of the widened part: brows move in gestures, not per frame
# the widened brows may move at most this many times the clip's own spread: 5-s stretches of a
# person's own clip move theirs 0.62-1.30 times the whole clip's (Obama 0.68-1.17, the congressman
# 0.62-1.30), so a limit at 1 would narrow every livelier stretch; this one stops overshoot only
# (a news reader's fitted gain of 2.8 moved his brows 2.1x as far as his own on his next 10 s)
SPREAD_LIMIT = 1.25
# and at least this many times: the fitted gain is the clip's, but speech unlike the clip's (another
# voice, a language) moves the ridge's brows less: over 30 s of English, Fei-Fei Li's moved 0.58 of
# her clip's and Ronald Reagan's 0.81 (benchmarks/eyelids.py, before the floor)
BROW_FLOOR = 1.0
HOLD_FRAMES = 75  # utterances shorter than this (3 s) are raised only part of the way: their spread is a small sample


def brow_height(model: MorphableModel, expression: np.ndarray) -> np.ndarray:
    """(T, K) expressions -> (T,) brows above the eyes in the frontal face, over the eye distance."""
    points = model.vertices(np.asarray(expression, np.float64))[:, model.landmark_index]
    right, left = topology.eye_centres(points)
    distance = np.linalg.norm(left - right, axis=1)
    brows = points[:, topology.brow_indices(), 1].mean(1)
    return ((right[:, 1] + left[:, 1]) / 2 - brows) / np.maximum(distance, 1e-9)  # image y grows downwards


def brow_axes(model: MorphableModel) -> np.ndarray:
    """(2, K) [g, u]: brow height changes by about `g @ delta` for an expression change `delta`,
    and by exactly 1 (to first order) along `u`, the change that moves the brows while lips and
    eyes stay as still as the face model allows."""
    step = 1e-3
    rest = np.zeros((1, model.n_expression))
    g = (brow_height(model, rest + step * np.eye(model.n_expression)) - brow_height(model, rest)) / step
    basis = landmark_basis(model)
    still = basis[:, np.concatenate([topology.lip_indices(), topology.eye_indices()])].reshape(len(basis), -1)
    system = still @ still.T + 1e-6 * np.trace(still @ still.T) / len(basis) * np.eye(len(basis))
    direction = np.linalg.solve(system, g)
    return np.stack([g, direction / max(g @ direction, 1e-12)]).astype(np.float32)


def smoothed(sequence: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(sequence, np.float64), SMOOTH_FRAMES, axis=0, mode="nearest")


def fit_brow_gain(model: MorphableModel, predicted: np.ndarray, real: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> float:
    """The scale (of the brow motion along `brow_axes`) that gives cross-validated predictions (T, K) the brow
    spread of the real expressions (T, K), searched over BROW_GAINS."""
    wanted = brow_height(model, real).std()
    spreads = np.array([brow_height(model, widen_brows(predicted, axes, centre, gain)).std() for gain in BROW_GAINS])
    if wanted < 1e-9 or (spreads < 1e-9).any():
        return 1.0
    return float(BROW_GAINS[int(np.argmin(np.abs(np.log(spreads / wanted))))])


def widen_brows(
    expression: np.ndarray, axes: np.ndarray, centre: np.ndarray, gain: float, limit: float | None = None, floor: float | None = None
) -> np.ndarray:
    """(T, K) expressions whose brow height (around `centre`'s) moves `gain` times as far, the
    added motion smoothed; `axes` from `brow_axes`. With `limit` (a spread of `brow_spread`), a
    gain that would move the brows further than that is lowered until they move just so far
    (down to BROW_GAINS[0]; a gain that keeps within it is left alone); with `floor`, one that
    would move them less is raised until they move that far (up to BROW_GAINS[-1]; for fewer
    than HOLD_FRAMES frames, part of the way)."""
    if len(expression) == 0:
        return np.asarray(expression, np.float32)
    height = _axis_height(expression, axes, centre)
    smooth = smoothed(height)
    if limit is not None and np.isfinite(limit) and len(height) > 1:
        gain = _limited(height, smooth, gain, limit)
    if floor is not None and np.isfinite(floor) and floor > 0 and len(height) > 1:
        raised = _raised(height, smooth, gain, floor)
        gain = gain * (raised / gain) ** min(1.0, len(height) / HOLD_FRAMES)
    if gain == 1.0:
        return np.asarray(expression, np.float32)
    extra = (gain - 1) * smooth[:, None] * axes[1][None]
    return (expression + extra).astype(np.float32)


def brow_spread(expression: np.ndarray, axes: np.ndarray, centre: np.ndarray) -> float:
    """The spread (std) of the brow height along `axes[0]`, the measure `widen_brows` limits."""
    return float(_axis_height(expression, axes, centre).std())


def _axis_height(expression: np.ndarray, axes: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(T,) brow height around `centre`'s, along `axes[0]`: what `widen_brows` scales and limits."""
    return (np.asarray(expression, np.float64) - centre) @ axes[0]


def _raised(height: np.ndarray, smooth: np.ndarray, gain: float, floor: float) -> float:
    """The gain, raised so std(height + (gain - 1) smooth) is at least `floor` (`_gain_at`), at most
    BROW_GAINS[-1]; a gain that reaches the floor is left alone."""
    terms = _spread_terms(height, smooth)
    if terms[1] < 1e-18 or _variance_at(terms, gain) >= floor * floor:
        return gain
    return float(np.clip(_gain_at(terms, floor), gain, BROW_GAINS[-1]))


def _limited(height: np.ndarray, smooth: np.ndarray, gain: float, limit: float) -> float:
    """The gain, lowered so std(height + (gain - 1) smooth) is at most `limit` (`_gain_at`), at
    least BROW_GAINS[0]; a gain that keeps within the limit is left alone."""
    terms = _spread_terms(height, smooth)
    if terms[1] < 1e-18 or _variance_at(terms, gain) <= limit * limit:
        return gain
    return float(np.clip(_gain_at(terms, limit), BROW_GAINS[0], gain))


def _spread_terms(height: np.ndarray, smooth: np.ndarray) -> tuple[float, float, float]:
    """var(height), var(smooth), cov(height, smooth): var(height + k smooth) is a quadratic in k."""
    h, s = height - height.mean(), smooth - smooth.mean()
    return float(h @ h) / len(h), float(s @ s) / len(h), float(h @ s) / len(h)


def _variance_at(terms: tuple[float, float, float], gain: float) -> float:
    var_h, var_s, cov = terms
    k = gain - 1.0
    return var_h + 2 * k * cov + k * k * var_s


def _gain_at(terms: tuple[float, float, float], spread: float) -> float:
    """The largest gain whose spread is `spread` (the quadratic's larger root in gain - 1), or the
    gain of least spread when none reaches it."""
    var_h, var_s, cov = terms
    discriminant = cov * cov - var_s * (var_h - spread * spread)
    k = (-cov + np.sqrt(discriminant)) / var_s if discriminant >= 0 else -cov / var_s
    return 1.0 + k
