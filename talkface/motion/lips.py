"""The speaker-independent lip representation shared by the generic and the personal models.

Lips are the 40 MediaPipe lip points in the face model's own frontal frame, where every
face is scaled to RMS radius 1, as offsets from the person's neutral (mean) lips: (T, 120)
model units. Head pose does not enter, and one person's wide mouth and another's small one
land in the same space, so a model trained on many people predicts them for anyone.
"""

from __future__ import annotations

import functools

import numpy as np

from talkface.face import topology
from talkface.face.model import MorphableModel

@functools.lru_cache(maxsize=1)
def opening_points() -> tuple[int, int, int, int]:
    """Positions of the inner-lip top/bottom and the mouth corners within `lip_indices()`."""
    lips = list(topology.lip_indices())
    points = (topology.UPPER_INNER_LIP, topology.LOWER_INNER_LIP, topology.MOUTH_LEFT, topology.MOUTH_RIGHT)
    return tuple(lips.index(point) for point in points)


def neutral_lips(model: MorphableModel) -> np.ndarray:
    """(40, 3) the person's neutral lip points, model units."""
    return model.vertices(np.zeros((1, model.n_expression)))[0, model.landmark_index[topology.lip_indices()]]


def lip_offsets(model: MorphableModel, expression: np.ndarray) -> np.ndarray:
    """(T, K) expression -> (T, 120) lip-point offsets from the neutral lips, model units."""
    lips = model.landmark_index[topology.lip_indices()]
    vertices = model.vertices(expression.astype(np.float64))[:, lips]
    return (vertices - neutral_lips(model)).reshape(len(expression), -1).astype(np.float32)


def opening_from_offsets(neutral: np.ndarray, offsets: np.ndarray, signed: bool = False) -> np.ndarray:
    """Mouth opening (inner-lip gap / mouth width, frontal) of lip offsets on a neutral mouth.

    Args:
        neutral: (40, 3) neutral lip points.
        offsets: (T, 120) lip offsets.
        signed: the vertical gap, negative where the lips have passed each other (the plain
            gap counts lips pressed past each other as open).

    Returns:
        (T,) float32, unitless.
    """
    points = neutral[None] + offsets.reshape(len(offsets), -1, 3)
    return topology.gap_ratio(points, *opening_points(), signed=signed).astype(np.float32)


def frontal_mouth_opening(model: MorphableModel, expression: np.ndarray) -> np.ndarray:
    """(T, K) expression -> (T,) mouth opening seen from the front."""
    return opening_from_offsets(neutral_lips(model), lip_offsets(model, expression))


def lip_basis(model: MorphableModel) -> np.ndarray:
    """(K, 120) float32: each expression coefficient's lip offsets (lips are linear in the
    expression and zero at zero, so `expression @ lip_basis` is `lip_offsets`)."""
    return lip_offsets(model, np.eye(model.n_expression))


def lips_to_expression(model: MorphableModel, penalty: float = 1e-3) -> np.ndarray:
    """(120, K) the linear map from lip offsets to the expression whose lips match them best.

    Lips are linear in the expression, so the damped least-squares solution is one matrix
    shared by all frames. Coefficients the lips do not constrain (eyes, brows) stay near zero.
    """
    basis = lip_basis(model).astype(np.float64)
    gram = basis @ basis.T + penalty * np.trace(basis @ basis.T) / model.n_expression * np.eye(model.n_expression)
    return np.linalg.solve(gram, basis).T


def expression_from_lips(model: MorphableModel, offsets: np.ndarray) -> np.ndarray:
    """(T, 120) lip offsets -> (T, K) float64 expression coefficients whose lips match them best."""
    return offsets.astype(np.float64) @ lips_to_expression(model)
