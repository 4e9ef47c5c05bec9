"""Fitting feature sequences to a number of video frames."""

from __future__ import annotations

import numpy as np


def fit_length(features: np.ndarray, length: int) -> np.ndarray:
    """Cut or edge-pad a (T, D) sequence to `length` rows (zeros when it is empty)."""
    if len(features) >= length:
        return features[:length]
    if len(features) == 0:
        return np.zeros((length, features.shape[1]), features.dtype)
    return np.pad(features, ((0, length - len(features)), (0, 0)), mode="edge")
