"""The rasterizer against a brute-force reference and a hand-checked case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.render import rasterizer
from talkface.render.rasterizer import interpolate, rasterize, rasterize_compiled, rasterize_vectorised, sample_texture

from ..conftest import CLIP

# every test runs both versions: the compiled loop (CPU) and the vectorised one (CUDA's)
BOTH = pytest.mark.parametrize("rasterize", [rasterize_compiled, rasterize_vectorised], ids=["compiled", "vectorised"])


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


@BOTH
def test_hand_checked_triangle(rasterize):
    # a right triangle covering the pixels with x + y <= 4 in the top-left corner (counter-clockwise, y down)
    vertices = torch.tensor([[0.0, 0.0, 1.0], [0.0, 4.0, 1.0], [4.0, 0.0, 1.0]])
    fragments = rasterize(vertices, torch.tensor([[0, 1, 2]]), (6, 6))
    expected = np.add.outer(np.arange(6), np.arange(6)) <= 4
    np.testing.assert_array_equal(fragments.mask.numpy(), expected)
    # at pixel (x=1, y=2) the weights are (1 - 2/4 - 1/4, 2/4, 1/4)
    np.testing.assert_allclose(fragments.barycentric[2, 1].numpy(), [0.25, 0.5, 0.25], atol=1e-6)


@BOTH
def test_back_faces_are_not_drawn(rasterize):
    vertices = torch.tensor([[0.0, 0.0, 1.0], [4.0, 0.0, 1.0], [0.0, 4.0, 1.0]])  # clockwise on screen
    assert not rasterize(vertices, torch.tensor([[0, 1, 2]]), (6, 6)).mask.any()


@BOTH
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_with_overlaps(rasterize, seed):
    rng = np.random.default_rng(seed)
    size = (23, 17)
    vertices = np.column_stack([rng.uniform(-3, 25, 30), rng.uniform(-3, 19, 30), rng.uniform(0, 10, 30)])
    dtype = torch.float32 if rasterize is rasterize_compiled else torch.float64  # the compiled loop is float32 only
    vertices = vertices.astype(np.float32).astype(np.float64) if dtype == torch.float32 else vertices
    triangles = rng.integers(0, 30, (25, 3))
    triangles = triangles[(triangles[:, 0] != triangles[:, 1]) & (triangles[:, 1] != triangles[:, 2]) & (triangles[:, 0] != triangles[:, 2])]
    expected, expected_depth = brute_force(vertices, triangles, size)
    fragments = rasterize(torch.tensor(vertices, dtype=dtype), torch.tensor(triangles), size)
    np.testing.assert_array_equal(fragments.triangle.numpy(), expected)
    covered = expected >= 0
    np.testing.assert_allclose(fragments.depth.numpy()[covered], expected_depth[covered], atol=1e-9 if dtype == torch.float64 else 1e-4)


@BOTH
def test_a_mesh_far_from_the_origin_in_float32_has_no_cracks(rasterize):
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


@BOTH
def test_interpolation_and_texture_lookup(rasterize):
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


def test_the_two_versions_agree_on_a_real_face_turned_until_it_hides_itself():
    """A face tracked in the shipped clip, turned 50 degrees so the nose covers a cheek: the
    compiled loop and the vectorised version pick the same triangle for every pixel, and
    interpolation through either gives the same values. NaN vertices draw nothing."""
    from talkface.face import topology
    from talkface.face.tracker import FaceMeshTracker
    from talkface.media import read_frames

    with FaceMeshTracker() as tracker:
        points = tracker.process(next(iter(read_frames(CLIP))))[0][: topology.N_MESH].astype(np.float64)
    centre = points.mean(0)
    angle = np.radians(50)
    turn = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    points = (points - centre) @ turn.T + centre
    points[5] = np.nan  # one broken vertex: its triangles are skipped by both
    vertices = torch.tensor(points, dtype=torch.float32)
    triangles = torch.as_tensor(topology.triangles(), dtype=torch.long)
    compiled = rasterize_compiled(vertices, triangles, (450, 450))
    vectorised = rasterize_vectorised(vertices, triangles, (450, 450))
    assert compiled.mask.sum() > 10_000
    np.testing.assert_array_equal(compiled.triangle.numpy(), vectorised.triangle.numpy())
    np.testing.assert_allclose(compiled.barycentric.numpy(), vectorised.barycentric.numpy(), atol=1e-6)
    np.testing.assert_allclose(compiled.depth.numpy(), vectorised.depth.numpy(), atol=1e-3)
    # attributes interpolated by the compiled loop and by PyTorch's gathers (which a tensor
    # that needs gradients takes)
    attributes = torch.tensor(np.random.default_rng(0).uniform(0, 1, (len(points), 2)), dtype=torch.float32)
    covered, fast = rasterizer.interpolate_covered(compiled, triangles, attributes)
    _, reference = rasterizer.interpolate_covered(compiled, triangles, attributes.clone().requires_grad_(True))
    np.testing.assert_allclose(fast.numpy(), reference.detach().numpy(), atol=1e-5)
