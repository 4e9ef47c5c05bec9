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
    # barycentric weights and depth are planes over the screen: w = k0 * u + k1 * v + k2 in
    # coordinates (u, v) from the box's corner (small numbers: exact enough in float32 on any
    # frame size), one row of coefficients per triangle, so a (triangle, pixel) pair costs a
    # gather and three dot products
    local_corners = corners.clone()
    local_corners[:, :, :2] -= low[:, None]
    a, b, c = local_corners[:, 0], local_corners[:, 1], local_corners[:, 2]
    w0 = _edge_plane(b, c, area)
    w1 = _edge_plane(c, a, area)
    z_plane = w0 * (a[:, 2:3] - c[:, 2:3]) + w1 * (b[:, 2:3] - c[:, 2:3])  # z = w0 a_z + w1 b_z + (1 - w0 - w1) c_z
    z_plane[:, 2] += c[:, 2]
    planes = torch.cat([w0, w1, z_plane], 1)  # (F, 9)
    counts = spans[:, 0] * spans[:, 1]
    owner = torch.repeat_interleave(torch.arange(len(ids), device=device), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=device) - start[owner]
    columns = spans[:, 0].clamp(min=1)[owner]
    u, v = local % columns, torch.div(local, columns, rounding_mode="floor")
    # 2. barycentric coordinates and depth from the planes
    p = planes[owner]
    uf, vf = u.to(corners.dtype), v.to(corners.dtype)
    w0 = p[:, 0] * uf + p[:, 1] * vf + p[:, 2]
    w1 = p[:, 3] * uf + p[:, 4] * vf + p[:, 5]
    w2 = 1 - w0 - w1
    inside = torch.nonzero((w0 >= -INSIDE_EPS) & (w1 >= -INSIDE_EPS) & (w2 >= -INSIDE_EPS)).squeeze(1)  # one nonzero, then plain gathers
    owner, p = owner[inside], p[inside]
    weights = torch.stack([w0[inside], w1[inside], w2[inside]], 1)
    uf, vf = uf[inside], vf[inside]
    z = p[:, 6] * uf + p[:, 7] * vf + p[:, 8]
    x = low[owner, 0].long() + u[inside]
    y = low[owner, 1].long() + v[inside]
    # 3. z-buffer: the nearest fragment per pixel wins
    pixel = y * width + x
    depth = torch.full((height * width,), float("inf"), device=device, dtype=z.dtype)
    depth.scatter_reduce_(0, pixel, z, reduce="amin")
    winner = torch.nonzero(z <= depth[pixel]).squeeze(1)
    triangle = torch.full((height * width,), -1, device=device, dtype=torch.long)
    barycentric = torch.zeros((height * width, 3), device=device, dtype=z.dtype)
    won = pixel[winner]
    triangle[won] = ids[owner[winner]]
    barycentric[won] = weights[winner]
    return Fragments(triangle.view(height, width), barycentric.view(height, width, 3), depth.view(height, width))


def _edge_plane(p: torch.Tensor, q: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """(F, 3) plane coefficients (k0, k1, k2) of the barycentric weight of the corner opposite
    the edge p->q: the edge function ((p_x - x)(q_y - y) - (p_y - y)(q_x - x)) / area, expanded
    as k0 * x + k1 * y + k2."""
    k0 = (p[:, 1] - q[:, 1]) / area
    k1 = (q[:, 0] - p[:, 0]) / area
    k2 = (p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]) / area
    return torch.stack([k0, k1, k2], 1)


def interpolate_covered(fragments: Fragments, triangles: torch.Tensor, attributes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-vertex attributes (V, C) interpolated at the covered pixels only.

    Returns:
        (N,) flat indices (row * width + column) of the covered pixels and (N, C) their values.
    """
    covered = torch.nonzero(fragments.mask.view(-1)).squeeze(1)
    corner_values = attributes[triangles[fragments.triangle.view(-1)[covered]]]  # (N, 3, C)
    values = (fragments.barycentric.view(-1, 3)[covered].unsqueeze(-1) * corner_values).sum(1)
    return covered, values


def interpolate(fragments: Fragments, triangles: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """Per-vertex attributes (V, C) interpolated at every covered pixel: (H, W, C), 0 elsewhere."""
    height, width = fragments.triangle.shape
    covered, values = interpolate_covered(fragments, triangles, attributes)
    image = torch.zeros((height * width, attributes.shape[1]), dtype=values.dtype, device=values.device)
    image[covered] = values
    return image.view(height, width, -1)


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
