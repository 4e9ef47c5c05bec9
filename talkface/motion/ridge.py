"""Ridge regression on frame features with temporal context, and blocked cross-validation.

With 10-30 s of one speaker, data limits quality more than model size (a BiLSTM measured no
better than ridge, see benchmarks/results/motion.md), so the audio->motion maps are linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

CHUNK_FRAMES = 2000  # frames predicted at a time, so memory stays bounded for long audio


def stack_context(features: np.ndarray, radius: int) -> np.ndarray:
    """Concatenate each frame with its `radius` neighbours on each side (edges repeated).

    (T, D) -> (T, (2 * radius + 1) * D).
    """
    if radius == 0:
        return features
    padded = np.pad(features, ((radius, radius), (0, 0)), mode="edge")
    return np.concatenate([padded[i : i + len(features)] for i in range(2 * radius + 1)], axis=1)


def chunked(predict: Callable[[np.ndarray], np.ndarray], features: np.ndarray, radius: int, chunk: int = CHUNK_FRAMES) -> np.ndarray:
    """Apply a context-using `predict` to a long sequence chunk by chunk.

    Each chunk is given `radius` extra frames of real context on both sides (edge-repeated at
    the sequence ends), so the result equals predicting the whole sequence at once.
    """
    padded = np.pad(features, ((radius, radius), (0, 0)), mode="edge")
    outputs = []
    for start in range(0, len(features), chunk):
        stop = min(start + chunk, len(features))
        window = predict(padded[start : stop + 2 * radius])
        outputs.append(window[radius : radius + stop - start])
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


@dataclass(frozen=True)
class Ridge:
    """y = ((x - x_mean) / x_scale) @ weights + bias, fitted with an L2 penalty `alpha`."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    alpha: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, alpha: float, column_weights: np.ndarray | None = None) -> "Ridge":
        """Fit on (N, D) inputs and (N, O) targets; solves in whichever of N or D is smaller.

        Columns are standardised, then multiplied by `column_weights` (default 1): a column
        weighted w is penalised as if alpha were alpha / w^2, so an informative block of
        inputs can be trusted more than a large block of weak ones.
        """
        x = x.astype(np.float64)
        y = y.astype(np.float64)
        mean, scale = x.mean(0), x.std(0) + 1e-6
        if column_weights is not None:
            scale = scale / column_weights
        xn = (x - mean) / scale
        bias = y.mean(0)
        yc = y - bias
        if xn.shape[1] <= xn.shape[0]:
            weights = np.linalg.solve(xn.T @ xn + alpha * np.eye(xn.shape[1]), xn.T @ yc)
        else:  # dual form: N x N system
            weights = xn.T @ np.linalg.solve(xn @ xn.T + alpha * np.eye(xn.shape[0]), yc)
        return cls(mean.astype(np.float32), scale.astype(np.float32), weights.astype(np.float32), bias.astype(np.float32), float(alpha))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.x_mean) / self.x_scale) @ self.weights + self.bias

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}x_mean": self.x_mean,
            f"{prefix}x_scale": self.x_scale,
            f"{prefix}weights": self.weights,
            f"{prefix}bias": self.bias,
            f"{prefix}alpha": np.float64(self.alpha),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> "Ridge":
        return cls(
            arrays[f"{prefix}x_mean"],
            arrays[f"{prefix}x_scale"],
            arrays[f"{prefix}weights"],
            arrays[f"{prefix}bias"],
            float(arrays[f"{prefix}alpha"]),
        )


def blocked_folds(n: int, n_folds: int) -> list[np.ndarray]:
    """Contiguous validation blocks: neighbouring frames are too alike to split at random."""
    edges = np.linspace(0, n, n_folds + 1).round().astype(int)
    return [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])]


def cross_validated(
    x: np.ndarray, y: np.ndarray, alpha: float, n_folds: int = 5, column_weights: np.ndarray | None = None
) -> np.ndarray:
    """Predictions for every row from a model that never saw that row's block."""
    predictions = np.zeros_like(y, dtype=np.float64)
    for block in blocked_folds(len(x), n_folds):
        train = np.setdiff1d(np.arange(len(x)), block)
        predictions[block] = Ridge.fit(x[train], y[train], alpha, column_weights).predict(x[block])
    return predictions


def choose_alpha(
    x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...], n_folds: int = 5, column_weights: np.ndarray | None = None
) -> float:
    """The penalty with the lowest blocked cross-validated squared error."""
    errors = [np.mean((cross_validated(x, y, alpha, n_folds, column_weights) - y) ** 2) for alpha in alphas]
    return float(alphas[int(np.argmin(errors))])
