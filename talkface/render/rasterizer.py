"""A z-buffer triangle rasterizer in PyTorch: the same code on CPU and CUDA.

Pixel centres sit at integer coordinates (as in OpenCV): pixel (row i, column j) is the
point (x=j, y=i). For each pixel the nearest covering triangle wins (smallest z; z points
away from the camera). Only triangles facing the camera are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

INSIDE_EPS = 1e-6  # barycentric tolerance so pixels on shared edges are not lost


@dataclass(frozen=True)
class Fragments:
    """What covers each pixel.

    Attributes:
        triangle: (H, W) long, index of the visible triangle, -1 where none.
        barycentric: (H, W, 3) float, weights of its three corners (0 where none).
        depth: (H, W) float, interpolated z (inf where none).
    """

    triangle: torch.Tensor
    barycentric: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.triangle >= 0


class Rasterizer(Protocol):
    def __call__(self, vertices: torch.Tensor, triangles: torch.Tensor, size: tuple[int, int]) -> Fragments: ...


def rasterize(vertices: torch.Tensor, triangles: torch.Tensor, size: tuple[int, int]) -> Fragments:
    """Rasterize a mesh.

    Args:
        vertices: (V, 3) float pixels: x right, y down, z away from the camera.
        triangles: (F, 3) long, counter-clockwise on screen when facing the camera.
        size: (width, height) of the image.

    Returns:
        The fragments.
    """
    width, height = size
    device = vertices.device
    corners = vertices[triangles]  # (F, 3, 3)
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = area < -1e-9  # facing the camera: counter-clockwise with y down has negative area
    ids = torch.nonzero(keep).squeeze(1)
    corners, area = corners[ids], area[ids]
    # 1. every (triangle, pixel) pair inside the triangle's bounding box
    low = torch.clamp(torch.ceil(corners[:, :, :2].amin(1)), min=0)
    high = torch.minimum(torch.floor(corners[:, :, :2].amax(1)), torch.tensor([width - 1, height - 1], device=device, dtype=corners.dtype))
    spans = (high - low + 1).clamp(min=0).long()  # (F, 2) columns, rows
    counts = spans[:, 0] * spans[:, 1]
    owner = torch.repeat_interleave(torch.arange(len(ids), device=device), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=device) - start[owner]
    x = low[owner, 0] + (local % spans[owner, 0].clamp(min=1))
    y = low[owner, 1] + torch.div(local, spans[owner, 0].clamp(min=1), rounding_mode="floor")
    # 2. barycentric coordinates by edge functions
    a, b, c = corners[owner, 0], corners[owner, 1], corners[owner, 2]
    w0 = ((b[:, 0] - x) * (c[:, 1] - y) - (b[:, 1] - y) * (c[:, 0] - x)) / area[owner]
    w1 = ((c[:, 0] - x) * (a[:, 1] - y) - (c[:, 1] - y) * (a[:, 0] - x)) / area[owner]
    w2 = 1 - w0 - w1
    inside = (w0 >= -INSIDE_EPS) & (w1 >= -INSIDE_EPS) & (w2 >= -INSIDE_EPS)
    weights = torch.stack([w0, w1, w2], 1)[inside]
    owner, x, y = owner[inside], x[inside], y[inside]
    z = (weights * torch.stack([a[inside, 2], b[inside, 2], c[inside, 2]], 1)).sum(1)
    # 3. z-buffer: the nearest fragment per pixel wins
    pixel = (y * width + x).long()
    depth = torch.full((height * width,), float("inf"), device=device, dtype=z.dtype)
    depth.scatter_reduce_(0, pixel, z, reduce="amin")
    winner = z <= depth[pixel]
    triangle = torch.full((height * width,), -1, device=device, dtype=torch.long)
    barycentric = torch.zeros((height * width, 3), device=device, dtype=z.dtype)
    triangle[pixel[winner]] = ids[owner[winner]]
    barycentric[pixel[winner]] = weights[winner]
    return Fragments(triangle.view(height, width), barycentric.view(height, width, 3), depth.view(height, width))


def interpolate(fragments: Fragments, triangles: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """Per-vertex attributes (V, C) interpolated at every covered pixel: (H, W, C), 0 elsewhere."""
    safe = fragments.triangle.clamp(min=0)
    corner_values = attributes[triangles[safe]]  # (H, W, 3, C)
    values = (fragments.barycentric.unsqueeze(-1) * corner_values).sum(-2)
    return values * fragments.mask.unsqueeze(-1)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear texture lookup.

    Args:
        texture: (S, S, 3) float in [0, 255].
        uv: (H, W, 2) texture coordinates in [0, 1], (0, 0) at the texture's top-left.

    Returns:
        (H, W, 3) float colours.
    """
    grid = (uv * 2 - 1).unsqueeze(0)  # grid_sample wants [-1, 1] with align_corners=False
    image = texture.permute(2, 0, 1).unsqueeze(0)
    sampled = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return sampled[0].permute(1, 2, 0)
