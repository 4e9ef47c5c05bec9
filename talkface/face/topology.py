"""The MediaPipe Face Mesh topology: triangles and named landmark groups.

MediaPipe ships only an edge list (`FACEMESH_TESSELATION`); the triangles are its
3-cliques. Indices follow MediaPipe Face Mesh (478 points with the 10 iris points).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path

import numpy as np

N_LANDMARKS = 478  # Face Mesh points with refine_landmarks (468 mesh + 10 iris)
N_MESH = 468  # points that belong to the triangle mesh

UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the subject's right/left
RIGHT_EYE_LID = (159, 145)  # upper, lower lid
LEFT_EYE_LID = (386, 374)
EYE_LIDS = (RIGHT_EYE_LID, LEFT_EYE_LID)  # (upper, lower) of each eye
EYE_CORNERS = ((33, 133), (362, 263))  # the two corners of each eye
CHIN, FOREHEAD = 152, 10
# pairs mirrored across the face's midline, used to find its left-right axis
MIRROR_PAIRS = ((33, 263), (133, 362), (61, 291), (234, 454), (93, 323), (58, 288), (172, 397), (70, 300))


@functools.lru_cache(maxsize=1)
def _connections():
    """MediaPipe's face_mesh_connections module (edge lists only), loaded from its file so the
    whole of MediaPipe (a second and a half of imports) is not needed to know the mesh."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    path = Path(spec.origin).parent / "python" / "solutions" / "face_mesh_connections.py" if spec and spec.origin else None
    if path is None or not path.is_file():
        from mediapipe.python.solutions import face_mesh_connections  # another layout: the normal import

        return face_mesh_connections
    module_spec = importlib.util.spec_from_file_location("talkface_face_mesh_connections", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _connection_indices(connections) -> np.ndarray:
    return np.array(sorted({i for edge in connections for i in edge}), dtype=np.int64)


@functools.lru_cache(maxsize=1)
def triangles() -> np.ndarray:
    """(F, 3) int32 vertex indices of the face mesh, unoriented.

    The tessellation's 3-cliques (854), plus fans that close the two eye openings, which the
    tessellation leaves open: closed, the eyes carry their texture and blinks show.
    """
    connections = _connections()
    edges = {tuple(sorted(edge)) for edge in connections.FACEMESH_TESSELATION}
    neighbours = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    found = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    for eye in (connections.FACEMESH_LEFT_EYE, connections.FACEMESH_RIGHT_EYE):
        loop = _closed_loop(eye)
        found |= {tuple(sorted((loop[0], loop[i], loop[i + 1]))) for i in range(1, len(loop) - 1)}
    return np.array(sorted(found), dtype=np.int32)


def _closed_loop(connections) -> list[int]:
    """The vertices of a closed contour given as edges, in order around it."""
    neighbours = defaultdict(list)
    for a, b in connections:
        neighbours[a].append(b)
        neighbours[b].append(a)
    start = min(neighbours)
    loop, previous = [start], None
    while True:
        current = loop[-1]
        following = [n for n in neighbours[current] if n != previous][0]
        if following == start:
            return loop
        previous = current
        loop.append(following)


@functools.lru_cache(maxsize=1)
def lip_indices() -> np.ndarray:
    """Indices of the 40 lip contour points (outer and inner)."""
    return _connection_indices(_connections().FACEMESH_LIPS)


@functools.lru_cache(maxsize=1)
def eye_indices() -> np.ndarray:
    """Indices of the 32 eye contour points (both eyes)."""
    connections = _connections()
    return _connection_indices(connections.FACEMESH_LEFT_EYE | connections.FACEMESH_RIGHT_EYE)


@functools.lru_cache(maxsize=1)
def brow_indices() -> np.ndarray:
    """Indices of the 20 eyebrow contour points (both brows)."""
    connections = _connections()
    return _connection_indices(connections.FACEMESH_LEFT_EYEBROW | connections.FACEMESH_RIGHT_EYEBROW)


@functools.lru_cache(maxsize=1)
def lip_edges() -> np.ndarray:
    """(E, 2) int32 edges of the outer and inner lip contours."""
    return np.array(sorted(_connections().FACEMESH_LIPS), dtype=np.int32)


@functools.lru_cache(maxsize=1)
def mesh_edges() -> np.ndarray:
    """(E, 2) int32 unique edges of the tessellation, for drawing wireframes."""
    return np.array(sorted({tuple(sorted(edge)) for edge in _connections().FACEMESH_TESSELATION}), dtype=np.int32)


def gap_ratio(points: np.ndarray, upper: int, lower: int, left: int, right: int, signed: bool = False) -> np.ndarray:
    """Image-plane distance upper-lower divided by distance left-right: (..., N, >=2) -> (...,).
    `signed`: the vertical gap instead (lower y - upper y, y down: negative where the two have
    crossed), for points on a frontal face."""
    if signed:
        gap = points[..., lower, 1] - points[..., upper, 1]
    else:
        gap = np.linalg.norm(points[..., upper, :2] - points[..., lower, :2], axis=-1)
    width = np.linalg.norm(points[..., left, :2] - points[..., right, :2], axis=-1)
    return gap / np.maximum(width, 1e-6)


def mouth_openness(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap divided by mouth width: (..., 478, >=2) -> (...,), unitless."""
    return gap_ratio(landmarks, UPPER_INNER_LIP, LOWER_INNER_LIP, MOUTH_LEFT, MOUTH_RIGHT)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The right and the left eye's centre (between its corners): (..., 478, >=2) -> two (..., 2)."""
    right, left = (landmarks[..., list(corners), :2].mean(-2) for corners in EYE_CORNERS)
    return right, left


def eye_openness(landmarks: np.ndarray, signed: bool = False) -> np.ndarray:
    """Mean over both eyes of lid gap / eye width: (T, 478, >=2) -> (T,); `signed`: see gap_ratio."""
    ratios = [gap_ratio(landmarks, upper, lower, inner, outer, signed) for (upper, lower), (inner, outer) in zip(EYE_LIDS, EYE_CORNERS)]
    return np.mean(ratios, axis=0)
