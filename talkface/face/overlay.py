"""Draw the reconstructed mesh over video frames so a person can check the fit."""

from __future__ import annotations

import cv2
import numpy as np

from talkface.face import topology

MESH_COLOUR = (60, 220, 90)  # RGB
LIP_COLOUR = (255, 60, 60)
IRIS_COLOUR = (80, 160, 255)
SUBPIXEL_BITS = 4  # cv2 draws at 1/16 pixel precision


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << SUBPIXEL_BITS)).astype(np.int32)


def draw_overlay(frame: np.ndarray, landmarks: np.ndarray | None, label: str = "") -> np.ndarray:
    """Return a copy of `frame` with the face mesh, lips and irises drawn.

    Args:
        frame: RGB uint8 (H, W, 3).
        landmarks: (478, >=2) pixels, or None/NaN when the frame has no face.
        label: text written in the top-left corner.
    """
    out = frame.copy()
    thickness = max(1, round(min(frame.shape[:2]) / 600))
    if landmarks is None or np.isnan(landmarks[0, 0]):
        cv2.putText(out, "no face", (8, 44), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 40, 40), 2, cv2.LINE_AA)
    else:
        xy = _fixed(landmarks[:, :2])
        edges = topology.mesh_edges()
        lines = [np.stack([xy[a], xy[b]]) for a, b in edges]
        cv2.polylines(out, lines, False, MESH_COLOUR, thickness, cv2.LINE_AA, SUBPIXEL_BITS)
        lips = topology.lip_edges()
        cv2.polylines(out, [np.stack([xy[a], xy[b]]) for a, b in lips], False, LIP_COLOUR, thickness + 1, cv2.LINE_AA, SUBPIXEL_BITS)
        for point in xy[topology.N_MESH :]:
            cv2.circle(out, tuple(int(v) for v in point), 2 << SUBPIXEL_BITS, IRIS_COLOUR, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    if label:  # dark outline so the text reads on any background
        cv2.putText(out, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out
