"""Small statistics on per-frame signals, shared by the motion models and the metrics."""

from __future__ import annotations

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the frames where both are finite (nan if fewer than 3 or constant)."""
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) < 1e-12 or np.std(b[keep]) < 1e-12:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def best_lag(leader: np.ndarray, follower: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The delay (frames) at which `follower` best matches `leader`, and that correlation.

    A positive lag k means follower(t) ≈ leader(t - k): the follower is k frames late. Lags
    are limited to a third of the series so every tried lag compares most of it.
    """
    max_lag = min(max_lag, len(leader) // 3)
    best = (0, -np.inf)
    for lag in range(-max_lag, max_lag + 1):
        r = lagged_r(leader, follower, lag)
        if np.isfinite(r) and r > best[1]:
            best = (lag, r)
    return best[0], float(best[1]) if np.isfinite(best[1]) else float("nan")


def lagged_r(leader: np.ndarray, follower: np.ndarray, lag: int) -> float:
    """Pearson r of `follower` against `leader` delayed by `lag` frames (see `best_lag`)."""
    if lag >= 0:
        return pearson(leader[: len(leader) - lag], follower[lag:])
    return pearson(leader[-lag:], follower[: len(follower) + lag])


def subframe_lag(leader: np.ndarray, follower: np.ndarray, max_lag: int) -> tuple[float, float]:
    """`best_lag` refined to a fraction of a frame: the peak of the parabola through the
    correlations at the best lag and its two neighbours (within half a frame of the best lag).

    Mouth motion changes so fast at 25 frames/s that half a frame of audio/video offset costs a
    model trained on it several points of correlation, so offsets are corrected to this precision.
    """
    lag, peak = best_lag(leader, follower, max_lag)
    if not np.isfinite(peak):
        return 0.0, peak
    before, after = lagged_r(leader, follower, lag - 1), lagged_r(leader, follower, lag + 1)
    curvature = before - 2 * peak + after
    if not (np.isfinite(before) and np.isfinite(after)) or curvature >= 0:
        return float(lag), peak
    return float(lag + np.clip(0.5 * (before - after) / curvature, -0.5, 0.5)), peak


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive [first, last] index ranges where a boolean mask is True."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def blink_frames(openness: np.ndarray, drop: float = 0.6, max_frames: int = 12) -> list[tuple[int, int]]:
    """Blinks as [first, last] frame ranges where eye openness falls below `drop` times its
    median for at most `max_frames` frames (longer closures are not blinks)."""
    closed = openness < drop * np.nanmedian(openness)
    return [(a, b) for a, b in runs(closed) if b - a + 1 <= max_frames]


def best_window(good: np.ndarray, length: int, breaks: np.ndarray | None = None, break_cost: float = 50.0) -> int:
    """First index of the `length`-long window with the most `good` frames, each `breaks`
    frame inside it (after its first) costing `break_cost` good frames; 0 if shorter than `length`."""
    if len(good) <= length:
        return 0
    good_sum = np.concatenate([[0], np.cumsum(good)])
    starts = np.arange(0, len(good) - length + 1)
    score = (good_sum[starts + length] - good_sum[starts]).astype(np.float64)
    if breaks is not None:
        break_sum = np.concatenate([[0], np.cumsum(breaks)])
        score -= break_cost * (break_sum[starts + length] - break_sum[starts + 1])
    return int(starts[np.argmax(score)])
