"""Coarse frames: the textured face rendered at its pose, blended into a background frame."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from talkface.face.model import MeshFaceModel
from talkface.render.rasterizer import interpolate, rasterize, sample_texture

# the inner lip contour, in order around the mouth opening (MediaPipe indices)
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
MOUTH_SHADE = 0.3  # the mouth interior is the lips' colour this dark (the refiner paints teeth later)
FEATHER_SIGMA = 2.0  # px: softness of the face's edge
ERODE_PX = 2  # px the face mask shrinks before feathering, so no background-coloured rim shows
GAIN_LIMITS = (0.7, 1.4)  # per-channel colour correction towards the background frame's light


class FaceCompositor:
    """Renders one person's face into frames. Tensors live on `device` ('cpu' or 'cuda')."""

    def __init__(self, model: MeshFaceModel, device: str = "cpu"):
        self.model = model
        self.device = torch.device(device)
        self.triangles = torch.as_tensor(model.triangles, dtype=torch.long, device=self.device)
        self.uv = torch.as_tensor(model.uv, dtype=torch.float32, device=self.device)
        self.texture = torch.as_tensor(model.texture, dtype=torch.float32, device=self.device)

    def render(self, vertices: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Textured face: (H, W, 3) float colours and (H, W) bool coverage."""
        fragments = rasterize(torch.as_tensor(vertices, dtype=torch.float32, device=self.device), self.triangles, size)
        colours = sample_texture(self.texture, interpolate(fragments, self.triangles, self.uv))
        return colours.cpu().numpy(), fragments.mask.cpu().numpy()

    def composite(self, background: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Blend the face at `vertices` (V, 3 pixels) into `background` (RGB uint8).

        Returns:
            The frame (RGB uint8) and the blend weight of the face (H, W) float in [0, 1].
        """
        height, width = background.shape[:2]
        colours, covered = self.render(vertices, (width, height))
        colours = _match_light(colours, background, covered)
        mouth = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mouth, [np.round(vertices[list(INNER_LIPS), :2]).astype(np.int32)], 1)
        mouth = mouth.astype(bool) & ~covered
        if mouth.any() and covered.any():
            lips = colours[covered].mean(0) * MOUTH_SHADE
            colours[mouth] = lips
        weight = _feather(covered | mouth)
        frame = weight[..., None] * colours + (1 - weight[..., None]) * background
        return np.clip(frame + 0.5, 0, 255).astype(np.uint8), weight


def _match_light(colours: np.ndarray, background: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Scale each channel so the face's mean colour matches the background frame's face."""
    inner = cv2.erode(covered.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    if inner.sum() < 50:
        return colours
    gain = background[inner].mean(0) / np.maximum(colours[inner].mean(0), 1.0)
    return colours * np.clip(gain, *GAIN_LIMITS)


def _feather(mask: np.ndarray) -> np.ndarray:
    shrunk = cv2.erode(mask.astype(np.uint8), np.ones((2 * ERODE_PX + 1,) * 2, np.uint8)).astype(np.float32)
    return cv2.GaussianBlur(shrunk, (0, 0), FEATHER_SIGMA)
