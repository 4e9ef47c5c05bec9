"""2D similarity fitting: rotation, scale and shift, never a mirror."""

from __future__ import annotations

import numpy as np

from talkface.face.geometry import similarity_matrix


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_a_known_similarity_is_recovered():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (20, 2))
    angle, scale = np.radians(17), 1.3
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ linear.T + [5.0, -7.0]
    np.testing.assert_allclose(similarity_matrix(source, target), np.hstack([linear, [[5.0], [-7.0]]]), atol=1e-9)


def test_nearly_straight_contours_are_never_fitted_mirrored():
    # two shut eyes: their contours nearly one line, the wiggles of one upside down to the other's.
    # Fitted as 3D points on a plane, the best fit turned the plane over: a patch pasted mirrored
    xs = np.linspace(0, 100, 32)
    wiggle = np.sin(xs / 7)
    source = np.stack([xs, 50 + 0.8 * wiggle], 1)
    target = np.stack([xs + 3, 52 - 0.8 * wiggle], 1)
    matrix = similarity_matrix(source, target)
    assert np.linalg.det(matrix[:, :2]) > 0  # a rotation and a scale: no mirror
    np.testing.assert_allclose(matrix[:, :2], np.eye(2), atol=0.02)  # nearly the identity, as the points lie
    np.testing.assert_allclose(_apply(matrix, source)[:, 0], target[:, 0], atol=0.5)
