"""3D face reconstruction from tracked landmarks: identity, head pose and expression.

`build_model` learns a person's MeshFaceModel from their clip (generalised Procrustes
alignment for the mean shape, PCA of the pose-normalised residuals for expressions);
`fit_clip` fits any MorphableModel's pose and expression to a track.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from talkface.config import ReconstructConfig
from talkface.errors import NoFaceError
from talkface.face import topology
from talkface.face.geometry import euler_to_rotation, rotation_to_euler, screen_cross, similarity_align
from talkface.face.model import FaceFit, MeshFaceModel, MorphableModel
from talkface.face.tracker import FaceTrack

POSE_REFINEMENTS = 2  # alternations of pose fit and expression fit per frame
BASIS_REFINEMENTS = 2  # re-estimations of the expression basis from refitted poses
MODEL_FRAMES = 3000  # at most this many tracked frames (evenly spread) teach the model: memory stays bounded
FIT_CHUNK = 2000  # frames fitted at a time


def _align_to(reference: np.ndarray, shapes: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Bring each (N, 3) shape onto `reference` with the similarity that best fits `subset` points."""
    scale, rotation, translation = similarity_align(shapes[:, subset], reference[None, subset].repeat(len(shapes), 0))
    return scale[:, None, None] * np.einsum("tij,tnj->tni", rotation, shapes) + translation[:, None]


def _procrustes_mean(shapes: np.ndarray, subset: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes analysis: returns (mean shape, shapes aligned to it)."""
    reference = shapes[len(shapes) // 2]
    for _ in range(iterations):
        aligned = _align_to(reference, shapes, subset)
        reference = aligned.mean(0)
    return reference, aligned


def canonical_frame(shape: np.ndarray) -> np.ndarray:
    """Rotate, centre and scale a mean shape so it faces the camera upright with RMS radius 1."""
    left = np.array([shape[b] - shape[a] for a, b in topology.MIRROR_PAIRS]).mean(0)
    x_axis = left / np.linalg.norm(left)
    down = shape[topology.CHIN] - shape[topology.FOREHEAD]
    y_axis = down - x_axis * (down @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    frontal = (shape - shape.mean(0)) @ np.stack([x_axis, y_axis, z_axis]).T
    return frontal / np.sqrt((frontal**2).sum(1).mean())


def orient_triangles(triangles: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Order each triangle's vertices counter-clockwise as seen from the camera (y down, z away)."""
    oriented = triangles.copy()
    flip = screen_cross(shape, triangles) > 0  # positive is clockwise on screen when y points down
    oriented[flip] = oriented[flip][:, [0, 2, 1]]
    return oriented


def build_model(track: FaceTrack, config: ReconstructConfig = ReconstructConfig()) -> tuple[MeshFaceModel, FaceFit]:
    """Learn the person's face model from their tracked clip and fit every frame.

    The texture is left empty (zeros); `talkface.face.texture.bake_texture` fills it.

    Args:
        track: the clip's landmarks.
        config: reconstruction settings.

    Returns:
        The model and its fit to the clip.

    Raises:
        NoFaceError: fewer tracked frames than expression components.
    """
    valid = track.tracked
    if valid.sum() <= config.n_expression:
        raise NoFaceError(
            f"only {int(valid.sum())} frames have a face; at least {config.n_expression + 1} are needed to "
            "build a face model"
        )
    full_track = track
    if valid.sum() > MODEL_FRAMES:  # a long video: learn from an even spread of its frames, fit them all
        chosen = np.flatnonzero(valid)[np.linspace(0, valid.sum() - 1, MODEL_FRAMES).round().astype(int)]
        track = replace(track, landmarks=track.landmarks[chosen], raw_landmarks=track.raw_landmarks[chosen], boxes=track.boxes[chosen])
        valid = track.tracked
    shapes = track.landmarks[valid].astype(np.float64)
    every = np.arange(shapes.shape[1])
    # 1. align everything, then keep the vertices that deform least as the rigid set
    mean, aligned = _procrustes_mean(shapes, every)
    spread = ((aligned - mean) ** 2).sum(2).mean(0) / np.sqrt((mean - mean.mean(0)) ** 2).sum(1).mean()
    rigid = np.argsort(spread)[: max(8, int(config.rigid_fraction * len(spread)))]
    mean, _ = _procrustes_mean(shapes, rigid)
    mean = canonical_frame(mean)
    # 2. expression basis from the pose-normalised residuals, refined by refitting the poses
    in_model = _align_to(mean, shapes, rigid)
    n_expression = min(config.n_expression, len(shapes) - 1)
    triangles = orient_triangles(topology.triangles(), mean)
    for _ in range(BASIS_REFINEMENTS + 1):
        residual = (in_model - mean).reshape(len(shapes), -1)
        offset = residual.mean(0)
        # the pose owns every rigid motion; an expression that contained one would trade off
        # against the pose and never settle, so those directions are removed first
        _, _, components = np.linalg.svd(without_head_motion(residual - offset, mean), full_matrices=False)
        # fold the residuals' mean into the mean shape so coefficients are centred
        mean = mean + offset.reshape(-1, 3)
        model = MeshFaceModel(
            mean_shape=mean.astype(np.float32),
            expression_basis=components[:n_expression].reshape(n_expression, -1, 3).astype(np.float32),
            expression_std=np.ones(n_expression, np.float32),
            triangles=triangles,
            uv=frontal_uv(mean),
            texture=np.zeros((config.texture_size, config.texture_size, 3), np.uint8),
        )
        fit = fit_clip(model, track)
        in_model = to_model_space(track.landmarks[valid], fit.pose[valid])
    if full_track is not track:
        fit = fit_clip(model, full_track)
    std = np.nanstd(fit.expression, axis=0).astype(np.float32)
    return replace(model, expression_std=std), fit


def head_motion_directions(shape: np.ndarray) -> np.ndarray:
    """(V*3, 7) orthonormal directions a similarity transform moves `shape` along, to first order:
    three translations, a scaling and three small rotations."""
    centred = shape - shape.mean(0)
    motions = [np.tile(axis, (len(shape), 1)) for axis in np.eye(3)]
    motions += [centred] + [np.cross(axis, centred) for axis in np.eye(3)]
    span, _ = np.linalg.qr(np.stack([m.reshape(-1) for m in motions], 1))
    return span


def without_head_motion(residual: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Remove from (T, V*3) residuals their components along the head-motion directions of `shape`."""
    span = head_motion_directions(shape)
    return residual - (residual @ span) @ span.T


def to_model_space(landmarks: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Undo the head pose: (T, N, 3) pixels and (T, 6) poses -> (T, N, 3) model units."""
    rotation = euler_to_rotation(pose[:, :3])
    centred = landmarks.astype(np.float64).copy()
    centred[..., :2] -= pose[:, None, 3:5]
    return np.einsum("tji,tnj->tni", rotation, centred) / pose[:, 5, None, None]


def frontal_uv(shape: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """Texture coordinates from the frontal orthographic view of the mean shape."""
    xy = shape[:, :2]
    low, high = xy.min(0), xy.max(0)
    size = (high - low).max()
    centre = (low + high) / 2
    return ((xy - centre) / size * (1 - 2 * margin) + 0.5).astype(np.float32)


def fit_clip(model: MorphableModel, track: FaceTrack) -> FaceFit:
    """Fit head pose and expression of `model` to every tracked frame.

    Pose comes from a similarity fit of the model's shape to the landmarks (first the neutral
    shape, then the expression-corrected one); expression from a linear least-squares solve
    in model space.

    Args:
        model: the face model (its landmark vertices are matched to the track's landmarks).
        track: the clip's landmarks.

    Returns:
        The per-frame fit (NaN in untracked frames).
    """
    valid = np.flatnonzero(track.tracked)
    n_frames, n_expression = track.n_frames, model.n_expression
    pose = np.full((n_frames, 6), np.nan, np.float32)
    expression = np.full((n_frames, n_expression), np.nan, np.float32)
    neutral = model.vertices(np.zeros((1, n_expression)))[0][model.landmark_index]
    basis = landmark_basis(model)
    for start in range(0, len(valid), FIT_CHUNK):  # frames are fitted independently: in chunks, bounded memory
        rows = valid[start : start + FIT_CHUNK]
        target = track.landmarks[rows].astype(np.float64)
        coefficients = np.zeros((len(target), n_expression))
        for _ in range(POSE_REFINEMENTS + 1):
            shape = neutral + np.einsum("tk,knc->tnc", coefficients, basis)
            scale, rotation, translation = similarity_align(shape, target)
            in_model = np.einsum("tji,tnj->tni", rotation, target - translation[:, None]) / scale[:, None, None]
            coefficients = _solve_expression(basis, in_model - neutral)
        pose[rows] = np.column_stack([rotation_to_euler(rotation), translation[:, :2], scale])
        expression[rows] = coefficients
    return FaceFit(pose, expression)


def landmark_basis(model: MorphableModel) -> np.ndarray:
    """(K, 478, 3) expression directions at the landmark vertices."""
    eye = np.eye(model.n_expression)
    neutral = model.vertices(np.zeros((1, model.n_expression)))
    return (model.vertices(eye) - neutral)[:, model.landmark_index]


def part_only(deltas: np.ndarray, model: MorphableModel, moving: np.ndarray, still: np.ndarray, stillness: float = 100.0) -> np.ndarray:
    """Expression changes that move the `moving` landmarks as `deltas` (T, K) do while keeping
    the `still` landmarks where they are.

    Solves min ||B_moving c - B_moving d||^2 + stillness ||B_still c||^2 for each row d.
    """
    basis = landmark_basis(model)  # (K, 478, 3)
    moves = basis[:, moving].reshape(len(basis), -1).T
    stays = basis[:, still].reshape(len(basis), -1).T
    system = moves.T @ moves + stillness * stays.T @ stays + 1e-9 * np.eye(len(basis))
    return np.linalg.solve(system, moves.T @ moves @ np.asarray(deltas, np.float64).T).T.astype(np.float32)


def _solve_expression(basis: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Least-squares coefficients with residual ≈ sum_k c_k basis_k: (T, N, 3) -> (T, K)."""
    flat = basis.reshape(len(basis), -1)
    solution, *_ = np.linalg.lstsq(flat.T, residual.reshape(len(residual), -1).T, rcond=None)
    return solution.T


def reprojection_error(track: FaceTrack, projected: np.ndarray) -> np.ndarray:
    """Per-frame mean 2D distance (pixels) between tracked and model landmarks (NaN if untracked)."""
    return np.linalg.norm(track.landmarks[..., :2] - projected[..., :2], axis=-1).mean(1)

