"""The rasterizer against a brute-force reference and a hand-checked case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.render.rasterizer import interpolate, rasterize, sample_texture


def brute_force(vertices: np.ndarray, triangles: np.ndarray, size: tuple[int, int]):
    """Every pixel against every triangle, in plain Python: nearest front-facing cover wins."""
    width, height = size
    winner = np.full((height, width), -1)
    depth = np.full((height, width), np.inf)
    for index, (i, j, k) in enumerate(triangles):
        a, b, c = vertices[i], vertices[j], vertices[k]
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if area >= 0:
            continue  # facing away
        for y in range(height):
            for x in range(width):
                w0 = ((b[0] - x) * (c[1] - y) - (b[1] - y) * (c[0] - x)) / area
                w1 = ((c[0] - x) * (a[1] - y) - (c[1] - y) * (a[0] - x)) / area
                w2 = 1 - w0 - w1
                if min(w0, w1, w2) >= -1e-6:
                    z = w0 * a[2] + w1 * b[2] + w2 * c[2]
                    if z < depth[y, x]:
                        depth[y, x], winner[y, x] = z, index
    return winner, depth


def test_hand_checked_triangle():
    # a right triangle covering the pixels with x + y <= 4 in the top-left corner (counter-clockwise, y down)
    vertices = torch.tensor([[0.0, 0.0, 1.0], [0.0, 4.0, 1.0], [4.0, 0.0, 1.0]])
    fragments = rasterize(vertices, torch.tensor([[0, 1, 2]]), (6, 6))
    expected = np.add.outer(np.arange(6), np.arange(6)) <= 4
    np.testing.assert_array_equal(fragments.mask.numpy(), expected)
    # at pixel (x=1, y=2) the weights are (1 - 2/4 - 1/4, 2/4, 1/4)
    np.testing.assert_allclose(fragments.barycentric[2, 1].numpy(), [0.25, 0.5, 0.25], atol=1e-6)


def test_back_faces_are_not_drawn():
    vertices = torch.tensor([[0.0, 0.0, 1.0], [4.0, 0.0, 1.0], [0.0, 4.0, 1.0]])  # clockwise on screen
    assert not rasterize(vertices, torch.tensor([[0, 1, 2]]), (6, 6)).mask.any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_with_overlaps(seed):
    rng = np.random.default_rng(seed)
    size = (23, 17)
    vertices = np.column_stack([rng.uniform(-3, 25, 30), rng.uniform(-3, 19, 30), rng.uniform(0, 10, 30)])
    triangles = rng.integers(0, 30, (25, 3))
    triangles = triangles[(triangles[:, 0] != triangles[:, 1]) & (triangles[:, 1] != triangles[:, 2]) & (triangles[:, 0] != triangles[:, 2])]
    expected, expected_depth = brute_force(vertices, triangles, size)
    fragments = rasterize(torch.tensor(vertices, dtype=torch.float64), torch.tensor(triangles), size)
    np.testing.assert_array_equal(fragments.triangle.numpy(), expected)
    covered = expected >= 0
    np.testing.assert_allclose(fragments.depth.numpy()[covered], expected_depth[covered], atol=1e-9)


def test_a_mesh_far_from_the_origin_in_float32_has_no_cracks():
    """A fine grid of small triangles placed at 4K-frame coordinates in float32 (as frames are
    rendered) covers every pixel inside it once, exactly as it does near the origin."""
    n = 40
    ys, xs = np.mgrid[0 : n + 1, 0 : n + 1] * 1.37
    grid = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, 5.0)])
    index = lambda i, j: i * (n + 1) + j  # noqa: E731
    quads = [(index(i, j), index(i + 1, j), index(i, j + 1), index(i + 1, j + 1)) for i in range(n) for j in range(n)]
    triangles = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (c, b, d))])
    near = rasterize(torch.tensor(grid + [2.3, 2.1, 0], dtype=torch.float32), triangles, (60, 60))
    far = rasterize(torch.tensor(grid + [3802.3, 2102.1, 0], dtype=torch.float32), triangles, (3900, 2200))
    far_crop = far.triangle[2100:2160, 3800:3860]
    assert (near.triangle[3:56, 3:56] >= 0).all()  # no cracks between triangles
    np.testing.assert_array_equal(far_crop.numpy(), near.triangle.numpy())


def test_interpolation_and_texture_lookup():
    vertices = torch.tensor([[0.0, 0.0, 1.0], [0.0, 8.0, 1.0], [8.0, 0.0, 1.0]])
    triangles = torch.tensor([[0, 1, 2]])
    fragments = rasterize(vertices, triangles, (9, 9))
    values = interpolate(fragments, triangles, vertices[:, :2])  # interpolating x, y gives x, y back
    ys, xs = np.nonzero(fragments.mask.numpy())
    np.testing.assert_allclose(values.numpy()[ys, xs], np.column_stack([xs, ys]), atol=1e-5)
    texture = torch.zeros((4, 4, 3))
    texture[:, 2:] = 255.0  # right half white
    uv = torch.tensor([[[0.1, 0.5], [0.9, 0.5]]])
    colours = sample_texture(texture, uv)
    assert colours[0, 0].max() < 1 and colours[0, 1].min() > 254
