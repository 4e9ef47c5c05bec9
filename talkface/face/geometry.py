"""Rigid geometry: batched similarity alignment (Umeyama) and Euler-angle poses."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def similarity_align(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity transforms with target ≈ scale * R @ source + t (Umeyama 1991).

    Args:
        source: (N, 3) or (T, N, 3) points.
        target: (T, N, 3) points.

    Returns:
        scale (T,), rotation (T, 3, 3), translation (T, 3).
    """
    source = np.broadcast_to(source, target.shape).astype(np.float64)
    target = target.astype(np.float64)
    source_mean, target_mean = source.mean(1), target.mean(1)
    src, dst = source - source_mean[:, None], target - target_mean[:, None]
    covariance = np.einsum("tni,tnj->tij", dst, src) / source.shape[1]
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))
    correction = np.ones((len(target), 3))
    correction[:, 2] = sign
    rotation = u @ (correction[:, :, None] * vt)
    source_var = (src**2).sum((1, 2)) / source.shape[1]
    scale = (singular * correction).sum(1) / source_var
    translation = target_mean - scale[:, None] * np.einsum("tij,tj->ti", rotation, source_mean)
    return scale, rotation, translation


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The (2, 3) least-squares similarity taking 2D points `source` (N, 2) onto `target` (N, 2):
    rotation, uniform scale and shift, never a mirror image. (Fitted as 3D points on a plane, it
    could turn the plane over, a mirror in 2D: a shut eye's nearly straight contour was fitted
    upside down and its patch pasted flipped.)"""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    centred_source, centred_target = source - source.mean(0), target - target.mean(0)
    # target = z * source in complex numbers, z = a + ib: [[a, -b], [b, a]]
    complex_source = centred_source[:, 0] + 1j * centred_source[:, 1]
    complex_target = centred_target[:, 0] + 1j * centred_target[:, 1]
    z = (np.conj(complex_source) @ complex_target) / max(float((np.abs(complex_source) ** 2).sum()), 1e-12)
    linear = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return np.hstack([linear, (target.mean(0) - linear @ source.mean(0))[:, None]])


def rotation_to_euler(rotation: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations -> (T, 3) [pitch, yaw, roll] radians, R = Rz(roll) Ry(yaw) Rx(pitch)."""
    return Rotation.from_matrix(rotation).as_euler("xyz")


def euler_to_rotation(angles: np.ndarray) -> np.ndarray:
    """(T, 3) [pitch, yaw, roll] radians -> (T, 3, 3) rotations."""
    return Rotation.from_euler("xyz", np.asarray(angles, np.float64).reshape(-1, 3)).as_matrix()


def apply_pose(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Place model-space points in the image.

    Args:
        points: (T, N, 3) model units.
        pose: (T, 6) [pitch, yaw, roll] radians, [tx, ty] pixels, scale (pixels per model unit).

    Returns:
        (T, N, 3) pixels: x right, y down, z depth relative to the head centre.
    """
    rotation = euler_to_rotation(pose[:, :3])
    placed = pose[:, 5, None, None] * np.einsum("tij,tnj->tni", rotation, points)
    placed[..., :2] += pose[:, None, 3:5]
    return placed


def screen_cross(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(F,) twice each triangle's signed area on screen (x right, y down): negative where its
    corners run counter-clockwise as seen, positive where clockwise."""
    a, b, c = (points[triangles[:, k], :2].astype(np.float64) for k in range(3))
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
