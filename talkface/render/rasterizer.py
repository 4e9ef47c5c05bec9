"""A z-buffer triangle rasterizer: vectorised PyTorch on CUDA, a compiled loop on CPU.

Pixel centres sit at integer coordinates (as in OpenCV): pixel (row i, column j) is the
point (x=j, y=i). For each pixel the nearest covering triangle wins (smallest z; z points
away from the camera). Only triangles facing the camera are drawn.

On CPU a per-triangle loop compiled by Numba does the same arithmetic as the PyTorch version
without materialising every (triangle, pixel) pair: about 10x faster for a face (the
PyTorch version is kept for CUDA, for CPUs where Numba cannot be imported, and as the
reference the tests compare it with).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np
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
    if vertices.device.type == "cpu" and vertices.dtype == torch.float32 and _compiled() is not None:
        return rasterize_compiled(vertices, triangles, size)
    return rasterize_vectorised(vertices, triangles, size)


def rasterize_compiled(vertices: torch.Tensor, triangles: torch.Tensor, size: tuple[int, int]) -> Fragments:
    """`rasterize` by the Numba-compiled loop (CPU, float32 vertices)."""
    width, height = size
    triangle = np.full((height, width), -1, np.int64)
    barycentric = np.zeros((height, width, 3), np.float32)
    depth = np.full((height, width), np.inf, np.float32)
    points = np.ascontiguousarray(vertices.detach().numpy(), dtype=np.float32)
    _compiled()(points, np.ascontiguousarray(triangles.numpy()), width, height, triangle, barycentric, depth)
    return Fragments(torch.from_numpy(triangle), torch.from_numpy(barycentric), torch.from_numpy(depth))


@functools.lru_cache(maxsize=1)
def _compiled():
    """The compiled rasterizer loop, or None where Numba is unavailable."""
    try:
        import numba
    except Exception:  # not installed, or no build for this platform: the PyTorch version runs
        return None
    return numba.njit(nogil=True, cache=True)(_rasterize_loop)


@functools.lru_cache(maxsize=1)
def _compiled_interpolation():
    import numba

    return numba.njit(nogil=True, cache=True)(_interpolate_loop)


def _interpolate_loop(triangle, barycentric, triangles, attributes, covered, out):
    """out[n] = the attributes interpolated at flat pixel covered[n] (compiled by Numba)."""
    for n in range(covered.shape[0]):
        pixel = covered[n]
        corners = triangles[triangle[pixel]]
        for k in range(attributes.shape[1]):
            out[n, k] = (
                barycentric[pixel, 0] * attributes[corners[0], k]
                + barycentric[pixel, 1] * attributes[corners[1], k]
                + barycentric[pixel, 2] * attributes[corners[2], k]
            )


def _rasterize_loop(vertices, triangles, width, height, triangle_out, barycentric_out, depth_out):
    """The z-buffer loop (compiled by Numba; plain Python would be far too slow). The same
    float32 arithmetic, in the same order, as `rasterize_vectorised`, so the two agree pixel
    for pixel: the planes of each triangle in coordinates from its box's corner."""
    f32 = np.float32
    zero, one, eps, facing = f32(0), f32(1), f32(INSIDE_EPS), f32(-1e-9)
    right, bottom = f32(width - 1), f32(height - 1)
    for f in range(triangles.shape[0]):
        a, b, c = triangles[f, 0], triangles[f, 1], triangles[f, 2]
        ax, ay, az = vertices[a, 0], vertices[a, 1], vertices[a, 2]
        bx, by, bz = vertices[b, 0], vertices[b, 1], vertices[b, 2]
        cx, cy, cz = vertices[c, 0], vertices[c, 1], vertices[c, 2]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if not area < facing:  # back-facing, degenerate or NaN
            continue
        x0 = max(np.ceil(min(ax, bx, cx)), zero)
        y0 = max(np.ceil(min(ay, by, cy)), zero)
        x1 = min(np.floor(max(ax, bx, cx)), right)
        y1 = min(np.floor(max(ay, by, cy)), bottom)
        if x1 < x0 or y1 < y0:
            continue
        ax, bx, cx, ay, by, cy = ax - x0, bx - x0, cx - x0, ay - y0, by - y0, cy - y0
        k00, k01, k02 = (by - cy) / area, (cx - bx) / area, (bx * cy - by * cx) / area  # weight of a
        k10, k11, k12 = (cy - ay) / area, (ax - cx) / area, (cx * ay - cy * ax) / area  # weight of b
        dz_a, dz_b = az - cz, bz - cz
        z0, z1, z2 = k00 * dz_a + k10 * dz_b, k01 * dz_a + k11 * dz_b, k02 * dz_a + k12 * dz_b + cz
        left, top = int(x0), int(y0)
        for v in range(int(y1 - y0) + 1):
            vf = f32(v)
            for u in range(int(x1 - x0) + 1):
                uf = f32(u)
                w0 = k00 * uf + k01 * vf + k02
                w1 = k10 * uf + k11 * vf + k12
                w2 = one - w0 - w1
                if w0 < -eps or w1 < -eps or w2 < -eps:
                    continue
                z = z0 * uf + z1 * vf + z2
                y, x = top + v, left + u
                if z <= depth_out[y, x]:  # ties go to the later triangle, as in the vectorised version
                    depth_out[y, x] = z
                    triangle_out[y, x] = f
                    barycentric_out[y, x, 0] = w0
                    barycentric_out[y, x, 1] = w1
                    barycentric_out[y, x, 2] = w2


def rasterize_vectorised(vertices: torch.Tensor, triangles: torch.Tensor, size: tuple[int, int]) -> Fragments:
    """`rasterize` as whole-tensor PyTorch operations (any device)."""
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
    if attributes.device.type == "cpu" and not attributes.requires_grad and _compiled() is not None:
        values = np.empty((len(covered), attributes.shape[1]), np.float32)
        _compiled_interpolation()(
            fragments.triangle.view(-1).numpy(), fragments.barycentric.view(-1, 3).numpy(), triangles.numpy(),
            attributes.numpy().astype(np.float32, copy=False), covered.numpy(), values,
        )
        return covered, torch.from_numpy(values)
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
