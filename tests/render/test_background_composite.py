"""Keyframe selection and background matching; compositing masks; full-frame rendering."""

from __future__ import annotations

import cv2
import numpy as np

from talkface.render.background import FOLLOW_TURN_DEGREES, TURN_GAIN, background_indices, follow_indices, follow_turn, seat_head, select_keyframes
from talkface.render.composite import FaceCompositor, _feather


def test_keyframes_are_yaw_extremes_per_window():
    yaw = np.interp(np.arange(100), [0, 10, 35, 60, 85, 99], [0, 1, -1, 1, -1, 0])  # extremes at 10, 35, 60, 85
    keys = select_keyframes(yaw, window=25)
    assert keys[0] == 0 and keys[-1] == 99
    assert {10, 35, 60, 85} <= set(keys.tolist())


def test_background_follows_the_clip_when_driven_by_its_own_poses():
    rng = np.random.default_rng(0)
    clip = np.cumsum(rng.normal(0, 0.01, (200, 6)), axis=0)
    clip[:, 3:5] = 200 + np.cumsum(rng.normal(0, 1, (200, 2)), axis=0)
    clip[:, 5] = 100
    indices = background_indices(clip, clip, np.ones(200, bool))
    np.testing.assert_array_equal(indices, np.arange(200))


def test_background_skips_clip_frames_without_a_face():
    clip = np.zeros((50, 6))
    clip[:, 1] = np.linspace(-0.2, 0.2, 50)
    clip[:, 5] = 100
    valid = np.ones(50, bool)
    valid[20:30] = False
    indices = background_indices(clip[::-1].copy(), clip, valid)
    assert valid[indices].all()


def talking_clip(n: int = 500, seed: int = 0) -> np.ndarray:
    """A clip's head poses: angles wandering a few degrees (radians), position and scale."""
    rng = np.random.default_rng(seed)
    clip = np.zeros((n, 6))
    for k, degrees in enumerate((3.0, 6.0, 2.0)):
        walk = np.convolve(rng.normal(0, 1, n + 40), np.ones(40) / 40, "valid")[:n]
        clip[:, k] = np.radians(degrees) * walk / walk.std()
    clip[:, 3:5], clip[:, 5] = 200.0, 100.0
    return clip


def test_following_backgrounds_replay_the_clip_driven_by_its_own_poses():
    clip = talking_clip()
    np.testing.assert_array_equal(follow_indices(clip, clip, np.ones(len(clip), bool)), np.arange(len(clip)))


def test_following_backgrounds_keep_up_with_a_new_motion_and_rarely_cut():
    clip, motion = talking_clip(500, 0), talking_clip(750, 1) * 0.9  # another take, within the clip's range
    valid = np.ones(500, bool)
    valid[100:140] = False  # no face there
    for choose in (background_indices, follow_indices):
        indices = choose(motion, clip, valid)
        residual = motion[:, :3] - clip[indices, :3]
        lack = np.degrees(np.abs(residual)).sum(1)
        assert valid[indices].all()
        if choose is background_indices:
            keyframe_lack = np.median(lack)
            continue
        assert np.median(lack) < 0.75 * keyframe_lack, (np.median(lack), keyframe_lack)
        assert np.degrees(np.abs(residual - follow_turn(residual) / TURN_GAIN)).max() < 2  # the turn (as the warp shows it) closes (nearly) all the rest
        cuts = (np.abs(np.diff(indices)) > 1).sum()
        assert cuts <= 750 / 25 / 10  # at most one a 10 s
        assert np.isin(np.diff(indices), [-1, 0, 1]).mean() > 0.95  # otherwise it plays on, holds or plays back


def test_the_follow_turn_is_capped():
    residual = np.radians([[3.0, -25.0, 0.5], [-40.0, 8.0, 0.0]])
    turn = np.degrees(follow_turn(residual))
    np.testing.assert_allclose(turn, [[3.0 * TURN_GAIN[0], -FOLLOW_TURN_DEGREES, 0.5], [-FOLLOW_TURN_DEGREES, 8.0 * TURN_GAIN[1], 0.0]])
    assert TURN_GAIN[2] == 1 and (TURN_GAIN[:2] > 1).all(), "out-of-image turns asked more (the warp shows 0.86 of them), roll as it is"


def test_head_sits_where_the_background_head_is():
    poses = np.tile([0.1, 0.2, 0.0, 10.0, 20.0, 50.0], (3, 1))
    clip = np.tile([0.0, 0.0, 0.0, 200.0, 210.0, 90.0], (5, 1))
    seated = seat_head(poses, clip, np.array([0, 1, 4]))
    np.testing.assert_array_equal(seated[:, :3], poses[:, :3])
    np.testing.assert_array_equal(seated[:, 3:], clip[:3, 3:])


def test_feathered_mask_is_soft_inside_and_zero_outside():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    weight = _feather(mask)
    assert weight[20, 20] > 0.99 and weight[2, 2] == 0.0
    assert 0.0 < weight[10, 20] < 0.6  # the edge is soft, and pulled inside the face


def test_composite_covers_the_face_and_keeps_the_rest(clip_frames):
    from talkface.face.fit import build_model
    from talkface.face.model import project_landmarks
    from talkface.face.tracker import track_video
    from tests.conftest import CLIP

    track = track_video(CLIP)
    model, fit = build_model(track)
    model = type(model)(**{**model.__dict__, "texture": np.full_like(model.texture, 200)})
    vertices = project_landmarks(model, fit)[10].astype(np.float64)
    frame, weight = FaceCompositor(model).composite(clip_frames[10], vertices)
    x0, y0 = vertices[:, :2].min(0).astype(int)
    x1, y1 = vertices[:, :2].max(0).astype(int)
    assert weight[(y0 + y1) // 2, (x0 + x1) // 2] > 0.99  # face centre replaced
    np.testing.assert_array_equal(frame[:40, :40], clip_frames[10][:40, :40])  # background corner untouched
    assert weight[vertices[13, 1].astype(int) + 1, vertices[13, 0].astype(int)] > 0.5  # the mouth is covered
    # compositing works in a box around the face: exactly what working on the whole frame gives,
    # also for a face half out of the frame and one wholly outside it
    compositor = FaceCompositor(type(model)(**{**model.__dict__, "texture": np.asarray(model.texture)}))
    for shift in (0.0, -0.5 * (x1 + x0), 10_000.0):
        moved = vertices + [shift, 0, 0]
        boxed, boxed_weight = compositor.composite(clip_frames[10], moved)
        whole, whole_weight, _ = compositor._composite_box(clip_frames[10], moved)
        np.testing.assert_array_equal(boxed, whole)
        np.testing.assert_allclose(boxed_weight, whole_weight, atol=1e-6)


def test_background_never_races_through_the_clip():
    rng = np.random.default_rng(1)
    clip = np.zeros((500, 6))
    clip[:, 1] = np.sin(np.arange(500) / 15) * 0.1
    clip[:, 3:5] = 200
    clip[:, 5] = 100
    poses = clip[rng.integers(0, 500, 300)]  # poses that jump all over the clip
    poses[:, 1] += rng.normal(0, 0.02, 300)
    indices = background_indices(poses, clip, np.ones(500, bool))
    assert np.abs(np.diff(indices)).max() <= 2


def test_composite_keeps_the_background_frames_own_skin_away_from_the_mouth(clip_frames):
    from talkface.face.fit import build_model
    from talkface.face.model import project_landmarks
    from talkface.face.tracker import track_video
    from tests.conftest import CLIP

    track = track_video(CLIP)
    model, fit = build_model(track)
    model = type(model)(**{**model.__dict__, "texture": np.full_like(model.texture, 200)})
    vertices = project_landmarks(model, fit)[10].astype(np.float64)
    real = clip_frames[10]
    compositor = FaceCompositor(model)
    plain, _ = compositor.composite(real, vertices)
    kept, weight = compositor.composite(real, vertices, vertices)  # the background shows this very face
    nose, lip = np.round(vertices[6, :2]).astype(int), np.round(vertices[[0, 13], :2].mean(0)).astype(int)  # lip: the upper lip's middle
    assert np.abs(kept[nose[1], nose[0]].astype(int) - real[nose[1], nose[0]]).max() <= 3  # the frame's own skin
    assert np.ptp(plain[nose[1] - 3 : nose[1] + 4, nose[0] - 3 : nose[0] + 4].astype(int)) <= 3  # the flat texture
    np.testing.assert_array_equal(kept[lip[1], lip[0]], plain[lip[1], lip[0]])  # the lips stay the render's
    # a face drawn 6 px right of where the background's is: the skin moves along with it
    shifted, _ = compositor.composite(real, vertices + [6.0, 0, 0], vertices)
    forehead = np.round(vertices[151, :2]).astype(int)
    patch = (slice(forehead[1] - 4, forehead[1] + 5), slice(forehead[0] - 4, forehead[0] + 5))
    moved = (patch[0], slice(patch[1].start + 6, patch[1].stop + 6))
    assert np.abs(shifted[moved].astype(int) - real[patch]).mean() < 2.0
    # a background face without a fit (NaN) falls back to the texture
    np.testing.assert_array_equal(compositor.composite(real, vertices, np.full_like(vertices, np.nan))[0], plain)
    # the skin read from another image than the background (the clip frame before its head was
    # turned): on a grey background the drawn face's forehead is that frame's, moved with the mesh
    grey = np.full_like(real, 128)
    carried, _, kept_share = compositor.composite_keeping(grey, vertices + [6.0, 0, 0], vertices, real)
    assert np.abs(carried[moved].astype(int) - real[patch]).mean() < 2.0 and kept_share[moved].min() > 0.95
    np.testing.assert_array_equal(compositor.composite(grey, vertices + [6.0, 0, 0])[0][lip[1], lip[0] + 6], carried[lip[1], lip[0] + 6])
    # a photo profile keeps its photo's own pixels over the whole face, the lips too
    compositor.keep_whole_face()
    whole, _, whole_share = compositor.composite_keeping(grey, vertices + [6.0, 0, 0], vertices, real)
    lips = (slice(lip[1] - 1, lip[1] + 2), slice(lip[0] - 1, lip[0] + 2))
    lips_moved = (lips[0], slice(lips[1].start + 6, lips[1].stop + 6))
    assert whole_share[lips_moved].min() > 0.95 and np.abs(whole[lips_moved].astype(int) - real[lips]).mean() < 4.0


def test_skin_weights_and_sources_seen_edge_on():
    from talkface.render.composite import _seen_in_source, skin_weights
    from talkface.face import topology
    from talkface.face.fit import build_model
    from talkface.face.tracker import track_video
    from tests.conftest import CLIP

    model, _ = build_model(track_video(CLIP))
    weights = skin_weights(model.mean_shape)
    assert (weights[topology.lip_indices()] == 0).all()
    assert weights[[6, 151, 10]].min() == 1.0  # nose bridge and forehead: the frame's own skin
    assert ((weights >= 0) & (weights <= 1)).all()
    triangle = np.array([[0, 1, 2]])
    drawn = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0]])
    edge_on = drawn * [1, 0.2, 1]  # seen almost edge-on in the source: its skin there is smeared
    flipped = drawn * [-1, 1, 1]  # seen from behind
    assert _seen_in_source(drawn, drawn, triangle)[0] == 1.0
    assert _seen_in_source(drawn, edge_on, triangle)[0] == 0.0 and _seen_in_source(drawn, flipped, triangle)[0] == 0.0


def test_the_mouth_openings_edge_is_anti_aliased():
    from talkface.render.composite import _soften_edge

    colours = np.full((40, 40, 3), 200.0, np.float32)
    mouth = np.zeros((40, 40), np.uint8)
    mouth[15:25, 10:30] = 1
    colours[mouth.view(bool)] = 20.0
    before = colours.copy()
    _soften_edge(colours, mouth)
    assert 20 < colours[15, 20, 0] < 200 and 20 < colours[14, 20, 0] < 200  # both sides of the edge: in between
    assert colours[20, 20, 0] == 20 and colours[5, 5, 0] == 200  # away from it: as drawn
    np.testing.assert_array_equal(colours[:12], before[:12])


def test_a_motion_beyond_what_the_clip_shows_gets_one_note():
    from talkface.render.background import pose_range_note

    clip = np.zeros((200, 6))
    clip[:, 1] = np.radians(np.linspace(-5, 5, 200))  # the clip turns -5..5 degrees
    valid = np.ones(200, bool)
    calm = np.zeros((100, 6))
    calm[:, 1] = np.radians(np.linspace(-12, 12, 100))  # within 5 + FOLLOW_TURN_DEGREES
    assert pose_range_note(calm, clip, valid) is None
    wide = calm.copy()
    wide[:10, 1] = np.radians(25)
    note = pose_range_note(wide, clip, valid)
    assert note.startswith("the motion turns the head yaw to -10..25 degrees in 10% of the frames, where the clip shows -5..5")
    assert "--pose-scale" in note and "\n" not in note


def test_a_photos_open_mouth_darkens_into_the_throat(clip_frames):
    """A photo profile's opening (no refiner paints it) is dark at its edge and darker at its middle;
    a clip profile's stays the flat dark its refiner was trained on."""
    from talkface.face.fit import build_model
    from talkface.face.model import project_landmarks
    from talkface.face.tracker import track_video
    from talkface.render.composite import INNER_LIPS, MOUTH_DEEP, MOUTH_SHADE
    from talkface.render.mouth import PhotoMouth
    from talkface.face.topology import mouth_openness
    from tests.conftest import CLIP

    track = track_video(CLIP)
    model, fit = build_model(track)
    model = type(model)(**{**model.__dict__, "texture": np.full_like(model.texture, 200)})
    vertices = project_landmarks(model, fit).astype(np.float64)
    index = int(np.argmax(mouth_openness(vertices)))  # the widest open frame
    placed = vertices[index]
    hole = np.zeros(clip_frames[index].shape[:2], np.uint8)
    cv2.fillPoly(hole, [np.round(placed[list(INNER_LIPS), :2]).astype(np.int32)], 1)
    depth = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
    assert depth.max() >= 4, "the test clip opens its mouth"
    middle, rim = depth >= 0.8 * depth.max(), (depth >= 2) & (depth <= 3)
    grey = {}
    for kind in ("photo", "clip"):
        compositor = FaceCompositor(model)
        if kind == "photo":  # a photo whose lips meet shows no teeth of its own to paste: the opening as drawn
            compositor.teeth = PhotoMouth(np.zeros((8, 8, 3), np.uint8), np.zeros((478, 2)), INNER_LIPS)
            assert not compositor.teeth.usable
        frame, _ = compositor.composite(clip_frames[index], placed)
        grey[kind] = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(float)
    assert grey["photo"][middle].mean() < 0.75 * grey["photo"][rim].mean()
    assert grey["photo"][middle].mean() < 0.6 * grey["clip"][middle].mean() and grey["photo"][middle].mean() > 0.5 * MOUTH_DEEP / MOUTH_SHADE * grey["clip"][middle].mean()
    assert abs(grey["clip"][middle].mean() - grey["clip"][rim].mean()) < 0.15 * grey["clip"][rim].mean()  # flat


def test_the_kept_skin_is_read_from_the_part_of_the_frame_it_needs_as_from_the_whole():
    """_moved_skin (a clip's bicubic kept skin, made as a sharpened bilinear remap of only the
    part of the frame the kept pixels read) gives the kept pixels what the remap of the whole
    frame gives; a photo's Lanczos is OpenCV's own."""
    from talkface.render.composite import _moved_skin
    from talkface.render.headwarp import sharp_remap

    rng = np.random.default_rng(5)
    image = cv2.GaussianBlur(rng.integers(0, 256, (200, 240, 3), np.uint8), (0, 0), 1.0)
    yy, xx = np.mgrid[0:60, 0:80].astype(np.float32)
    map_x, map_y = xx + 100.3 + 3 * np.sin(yy / 7), yy + 70.6 + 2 * np.cos(xx / 9)
    keep = np.zeros((60, 80), np.float32)
    keep[10:50, 15:70] = 0.8
    map_x[keep == 0], map_y[keep == 0] = -1, -1  # as the compositor leaves pixels off the face
    used = keep > 0
    moved = _moved_skin(image, map_x, map_y, keep, cv2.INTER_CUBIC)
    np.testing.assert_array_equal(moved[used], sharp_remap(image, map_x, map_y)[used])
    lanczos = _moved_skin(image, map_x, map_y, keep, cv2.INTER_LANCZOS4)
    np.testing.assert_array_equal(lanczos, cv2.remap(image, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE))
    assert not _moved_skin(image, map_x, map_y, np.zeros_like(keep), cv2.INTER_CUBIC).any()
    # the face drawn where the image has it (render --onto): its skin read as it is, not sharpened
    still = _moved_skin(image, xx + 100, yy + 70, keep, cv2.INTER_CUBIC, origin=(100, 70))
    np.testing.assert_array_equal(still[used], image[70:130, 100:180][used])
