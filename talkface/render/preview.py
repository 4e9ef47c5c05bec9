"""A quick shaded preview of the face mesh at any pose and expression (no background)."""

from __future__ import annotations

import cv2
import numpy as np

from talkface.face.model import MeshFaceModel
from talkface.face.texture import front_facing

BACKGROUND = (38, 40, 46)  # RGB
AMBIENT = 0.35  # share of light that does not depend on the surface's angle
SUBPIXEL_BITS = 4


def triangle_colours(model: MeshFaceModel) -> np.ndarray:
    """(F, 3) float32: the texture colour at each triangle's centre."""
    size = model.texture.shape[0]
    centres = model.uv[model.triangles].mean(1) * size - 0.5
    xs = np.clip(np.round(centres[:, 0]).astype(int), 0, size - 1)
    ys = np.clip(np.round(centres[:, 1]).astype(int), 0, size - 1)
    return model.texture[ys, xs].astype(np.float32)


def draw_mesh(vertices: np.ndarray, model: MeshFaceModel, colours: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Paint the mesh far-to-near with Lambert shading (light from the camera).

    Args:
        vertices: (V, 3) pixels (x right, y down, z away from the camera).
        model: supplies the triangles.
        colours: (F, 3) per-triangle base colours.
        size: (width, height) of the image.

    Returns:
        RGB uint8 (height, width, 3).
    """
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    triangles = model.triangles
    corners = vertices[triangles]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    facing = np.abs(normals[:, 2]) / (np.linalg.norm(normals, axis=1) + 1e-9)
    shade = AMBIENT + (1 - AMBIENT) * facing
    visible = front_facing(vertices, triangles)
    order = np.argsort(-corners[:, :, 2].mean(1))  # far first
    fixed = np.round(corners[:, :, :2] * (1 << SUBPIXEL_BITS)).astype(np.int32)
    lit = np.clip(colours * shade[:, None], 0, 255).astype(np.uint8)
    for index in order:
        if visible[index]:
            cv2.fillConvexPoly(image, fixed[index], lit[index].tolist(), cv2.LINE_AA, SUBPIXEL_BITS)
    return image
