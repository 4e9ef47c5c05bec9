"""3D reconstruction: alignment maths on known answers, and the fit of the real clip."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.config import ReconstructConfig
from talkface.errors import CacheError
from talkface.face import topology
from talkface.face.fit import build_model, fit_clip, reprojection_error, without_head_motion
from talkface.face.geometry import apply_pose, euler_to_rotation, rotation_to_euler, similarity_align
from talkface.face.model import FaceFit, MeshFaceModel, project_landmarks
from talkface.face.texture import front_facing, rasterize_uv
from talkface.face.tracker import FaceTrack, track_video


def test_similarity_align_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(50, 3))
    rotation = euler_to_rotation(np.array([[0.2, -0.4, 0.1]]))
    target = 3.0 * source @ rotation[0].T + np.array([5.0, -2.0, 1.0])
    scale, found, translation = similarity_align(source, target[None])
    assert scale[0] == pytest.approx(3.0)
    np.testing.assert_allclose(found[0], rotation[0], atol=1e-9)
    np.testing.assert_allclose(translation[0], [5.0, -2.0, 1.0], atol=1e-9)


def test_euler_round_trip():
    angles = np.array([[0.1, -0.3, 0.25], [-0.2, 0.5, 0.0]])
    np.testing.assert_allclose(rotation_to_euler(euler_to_rotation(angles)), angles, atol=1e-12)


def _synthetic_track(n_frames=120, seed=0):
    """Landmarks made from a known shape, 3 known expression directions and known poses."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(478, 3))
    mean[:, 2] *= 0.3
    basis = rng.normal(size=(3, 478, 3))
    # an expression must not be a head motion: remove the similarity directions of the mean
    # (3 translations, scale, 3 small rotations), otherwise pose and expression trade off
    basis = without_head_motion(basis.reshape(3, -1), mean).reshape(3, 478, 3)
    basis *= 0.05 / basis.std()
    coefficients = rng.normal(size=(n_frames, 3))
    pose = np.column_stack(
        [rng.uniform(-0.2, 0.2, (n_frames, 3)), rng.uniform(150, 250, (n_frames, 2)), rng.uniform(40, 60, n_frames)]
    )
    landmarks = apply_pose(mean + np.einsum("tk,knc->tnc", coefficients, basis), pose).astype(np.float32)
    boxes = np.concatenate([landmarks[..., :2].min(1), landmarks[..., :2].max(1)], 1)
    return FaceTrack(landmarks, landmarks.copy(), boxes, 25.0, 400, 400), pose


def test_fit_explains_synthetic_landmarks_exactly():
    track, true_pose = _synthetic_track()
    model, fit = build_model(track, ReconstructConfig(n_expression=3, texture_size=32))
    error = reprojection_error(track, project_landmarks(model, fit))
    assert error.max() < 1e-3
    # relative head motion is recovered (the model's own frontal frame differs by one fixed rotation)
    relative_true = euler_to_rotation(true_pose[:, :3]) @ euler_to_rotation(true_pose[:1, :3]).transpose(0, 2, 1)
    relative_fit = euler_to_rotation(fit.pose[:, :3]) @ euler_to_rotation(fit.pose[:1, :3]).transpose(0, 2, 1)
    np.testing.assert_allclose(relative_fit, relative_true, atol=1e-3)  # 0.06 degrees
    # the model has its own unit of length: scale is recovered up to one constant factor
    ratio = fit.pose[:, 5] / true_pose[:, 5]
    assert ratio.std() / ratio.mean() < 2e-3


def test_untracked_frames_get_no_fit():
    track, _ = _synthetic_track()
    landmarks = track.landmarks.copy()
    landmarks[10:20] = np.nan
    holed = FaceTrack(landmarks, landmarks, track.boxes, 25.0, 400, 400)
    model, fit = build_model(holed, ReconstructConfig(n_expression=3, texture_size=32))
    assert not fit.valid[10:20].any() and fit.valid[:10].all()
    assert np.isnan(project_landmarks(model, fit)[10:20]).all()


@pytest.fixture(scope="module")
def clip_model(clip):
    from talkface.track import reconstruct

    track = track_video(clip)
    model, fit = reconstruct(clip, track, ReconstructConfig())
    return track, model, fit


def test_real_clip_reconstruction_error_is_small(clip_model):
    track, model, fit = clip_model
    projected = project_landmarks(model, fit)
    assert np.nanmean(reprojection_error(track, projected)) < 1.5
    raw = np.linalg.norm(track.raw_landmarks[..., :2] - projected[..., :2], axis=-1).mean()
    assert raw < 1.5
    assert fit.pose.shape == (75, 6) and fit.expression.shape == (75, 32)
    # a frontal speaker: small angles, scale of the order of the face size
    assert np.abs(np.degrees(fit.pose[:, :3])).max() < 25
    assert 50 < np.median(fit.pose[:, 5]) < 200


def test_mesh_is_oriented_and_textured(clip_model):
    track, model, fit = clip_model
    assert model.triangles.shape == (854 + 2 * 14, 3)  # tessellation + the two closed eyes
    # in the canonical frontal view nearly every triangle shows its front
    front = front_facing(model.mean_shape, model.triangles)
    assert front.mean() > 0.97
    triangle_of, _ = rasterize_uv(model.uv, model.triangles, 64)
    assert (triangle_of >= 0).mean() > 0.4
    # the texture has skin colour inside the mesh, not the fill value everywhere
    inside = model.texture[rasterize_uv(model.uv, model.triangles, model.texture.shape[0])[0] >= 0]
    assert inside.std() > 10 and 60 < inside.mean() < 200


def test_canonical_frame_is_upright_and_facing(clip_model):
    _, model, _ = clip_model
    shape = model.mean_shape
    assert shape[topology.CHIN, 1] > shape[topology.FOREHEAD, 1], "y points down"
    assert shape[topology.LEFT_EYE_OUTER, 0] > shape[topology.RIGHT_EYE_OUTER, 0]
    assert np.sqrt((shape**2).sum(1).mean()) == pytest.approx(1.0, abs=0.05)


def test_fit_clip_with_an_existing_model(clip_model):
    track, model, fit = clip_model
    refit = fit_clip(model, track)
    np.testing.assert_allclose(refit.pose, fit.pose, atol=1e-3)


def test_model_save_load_and_version_check(tmp_path, clip_model):
    _, model, _ = clip_model
    model.save(tmp_path)
    loaded = MeshFaceModel.load(tmp_path)
    for name in ("mean_shape", "expression_basis", "triangles", "uv", "texture"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    (tmp_path / "model.json").write_text('{"format": 999}')
    with pytest.raises(CacheError, match="format 999"):
        MeshFaceModel.load(tmp_path)


def test_face_fit_valid_mask():
    fit = FaceFit(np.array([[0.0] * 6, [np.nan] * 6], np.float32), np.zeros((2, 3), np.float32))
    assert fit.valid.tolist() == [True, False]


def test_long_tracks_are_fitted_in_chunks_and_modelled_from_a_spread(clip_model, monkeypatch):
    """Fitting in chunks gives the same fit; a long track teaches the model from an even spread
    of its frames (memory bounded) and still gets every frame fitted."""
    import talkface.face.fit as fit_module

    face_track, model, whole = clip_model
    monkeypatch.setattr(fit_module, "FIT_CHUNK", 7)
    chunked = fit_clip(model, face_track)
    np.testing.assert_allclose(chunked.pose, fit_clip(model, face_track).pose)
    monkeypatch.setattr(fit_module, "FIT_CHUNK", 10_000)
    np.testing.assert_allclose(chunked.expression, fit_clip(model, face_track).expression, atol=1e-5)
    monkeypatch.setattr(fit_module, "MODEL_FRAMES", 40)
    spread_model, spread_fit = build_model(face_track, ReconstructConfig())
    assert np.isfinite(spread_fit.pose[face_track.tracked]).all() and len(spread_fit.pose) == face_track.n_frames
    error = np.nanmean(reprojection_error(face_track, project_landmarks(spread_model, spread_fit)))
    assert error < 2 * np.nanmean(reprojection_error(face_track, project_landmarks(model, whole))) + 0.2
