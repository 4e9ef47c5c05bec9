"""Whole-head warping: the geometry of the moves, and a real head turned in a real frame."""

from __future__ import annotations

import cv2
import numpy as np

from talkface.render.headwarp import GRID_STEP, HEAD_CENTRE, MAX_STRETCH, MIN_DEGREES, RING, cap_stretch, grid_moves, head_moves, needs_warp, warp_head

from ..conftest import CLIP

POSE = np.array([0.0, 0.0, 0.0, 200.0, 220.0, 70.0])  # pitch, yaw, roll (rad), x, y (px), scale (px per unit)


def turned(pose: np.ndarray, yaw_degrees: float = 0.0, pitch_degrees: float = 0.0) -> np.ndarray:
    out = pose.astype(np.float64).copy()
    out[:2] += np.radians([pitch_degrees, yaw_degrees])
    return out


def test_only_a_visible_turn_warps():
    assert not needs_warp(POSE, turned(POSE, 0.5 * MIN_DEGREES))
    assert needs_warp(POSE, turned(POSE, 2 * MIN_DEGREES)) and needs_warp(POSE, turned(POSE, 0, -2 * MIN_DEGREES))
    assert not needs_warp(POSE, turned(POSE) * np.nan)  # no pose: nothing to turn
    frame = np.zeros((64, 64, 3), np.uint8)
    assert warp_head(frame, POSE, turned(POSE, 0.5 * MIN_DEGREES)) is frame


def test_moves_are_a_rigid_turn_on_the_head_and_nothing_far_away():
    target = turned(POSE, 15)
    far = np.array([[200 + 3 * RING * 70 * 2.1, 220.0], [-500.0, -500.0]])
    np.testing.assert_allclose(head_moves(far, POSE, target), 0, atol=1e-9)
    np.testing.assert_allclose(head_moves(np.array([[200.0, 220.0], [230.0, 150.0]]), POSE, POSE), 0, atol=1e-9)
    # the head's middle: turning it right (+yaw) means the point seen there came from the left
    # of it in the frame before (or the right: the sign follows the model's yaw), by about
    # depth * sin(15 deg) * scale, and never vertically
    move = head_moves(np.array([[200.0, 200.0]]), POSE, target)[0]
    assert 2 < abs(move[0]) < 70 and abs(move[1]) < 2
    # continuous across the head's outline, where the moves switch from the surface to the fade:
    # steep at the rim (a rigid ellipsoid squeezes it) but no tear, so finer steps shrink the jumps
    def largest_jump(n):
        xs = np.linspace(60, 340, n)
        return np.abs(np.diff(head_moves(np.column_stack([xs, np.full_like(xs, 200.0)]), POSE, target)[:, 0])).max()

    assert largest_jump(4000) < 0.5 * largest_jump(400)


def test_with_the_face_mesh_the_warp_moves_the_face_as_the_drawn_face_moves():
    """The ellipsoid's front stands before the real face, so alone it carries the frame's face
    further sideways than the drawn face goes (the drawn face then sits off-centre in its head
    and reads as half the turn). Given the mesh, mesh points move as the mesh does; far from the
    face the moves are the ellipsoid's."""
    from talkface.face.geometry import apply_pose

    face = _real_face()
    for yaw in (20, -20):
        target = turned(POSE, yaw)
        drawn = apply_pose(face[None].astype(np.float64), target[None])[0, :, :2]
        exact = apply_pose(face[None].astype(np.float64), POSE[None])[0, :, :2] - drawn  # where the frame shows each point
        alone = np.abs(head_moves(drawn, POSE, target) - exact)[:, 0].mean()
        corrected = np.abs(head_moves(drawn, POSE, target, face) - exact)[:, 0].mean()
        assert alone > 2 and corrected < 0.75 * alone
    far = np.array([[200 + 3 * RING * 70 * 2.1, 220.0], [200.0, 220.0 - 2.9 * 70]])  # beyond the warp; above the hairline
    np.testing.assert_allclose(head_moves(far, POSE, target, face), head_moves(far, POSE, target), atol=0.5)
    # the warp's grid makes the same moves by splatting and blurring (a fraction of a pixel
    # apart on average; up to a few pixels where the ellipsoid's rim is steep between grid points),
    # and moves the mesh's points as well as the exact sum does
    gx, gy = np.arange(0, 400, GRID_STEP, dtype=np.float64), np.arange(0, 440, GRID_STEP, dtype=np.float64)
    exact_grid = head_moves(np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2), POSE, target, face).reshape(len(gy), len(gx), 2)
    grid = grid_moves(gx, gy, POSE, target, face)
    assert np.abs(grid - exact_grid).mean() < 0.2 and np.abs(grid - exact_grid).max() < 3.5
    cells = ((drawn - [gx[0], gy[0]]) / GRID_STEP).astype(np.float32)[None]
    on_mesh = np.stack([cv2.remap(grid[..., k].astype(np.float32), cells[..., 0], cells[..., 1], cv2.INTER_LINEAR)[0] for k in (0, 1)], -1)
    assert np.abs(on_mesh - exact)[:, 0].mean() < 1.1 * np.abs(head_moves(drawn, POSE, target, face) - exact)[:, 0].mean()


def test_the_face_correction_meets_the_mesh_where_a_blurred_warp_alone_would_not():
    """The face correction spreads the misses in passes (successive correction), not as one
    weighted mean: on the face the warp moves the mesh's points nearly all the way the drawn face
    moves them (one mean reached about four fifths on a real face), also after the ellipsoid's
    moves are softened; and it never bulges past the face's own misses (an exact radial-basis
    fit did: 59 px of correction for 29 px of miss at 20 degrees, a swollen cheek)."""
    from talkface.face.geometry import apply_pose

    face = _real_face()
    target = turned(POSE, 10)
    subset = face[:: max(1, len(face) // 120)].astype(np.float64)
    drawn = apply_pose(subset[None], target[None])[0, :, :2]
    exact = apply_pose(subset[None], POSE[None])[0, :, :2] - drawn
    gx, gy = np.arange(0, 400, GRID_STEP, dtype=np.float64), np.arange(0, 440, GRID_STEP, dtype=np.float64)
    cells = ((drawn - [gx[0], gy[0]]) / GRID_STEP).astype(np.float32)[None]
    for soften in (0.0, 2.0):
        grid = grid_moves(gx, gy, POSE, target, face, soften).astype(np.float32)
        moved = np.stack([cv2.remap(grid[..., k], cells[..., 0], cells[..., 1], cv2.INTER_LINEAR)[0] for k in (0, 1)], -1)
        achieved = (moved[:, 0] * exact[:, 0]).sum() / (exact[:, 0] ** 2).sum()
        assert 0.9 < achieved < 1.05, (soften, achieved)
    for yaw in (-20, 20):
        target = turned(POSE, yaw)
        drawn = apply_pose(subset[None], target[None])[0, :, :2]
        miss = (apply_pose(subset[None], POSE[None])[0, :, :2] - drawn) - head_moves(drawn, POSE, target)
        correction = grid_moves(gx, gy, POSE, target, face, 2.0) - grid_moves(gx, gy, POSE, target, None, 2.0)
        assert np.linalg.norm(correction, axis=-1).max() < 1.1 * np.linalg.norm(miss, axis=1).max()


def test_a_half_sure_matte_is_made_sure():
    """The segmenter reads ears at 0.6-0.8: firmed, they are the person's; faint haze is not."""
    from talkface.render.headwarp import firm_matte

    firmed = firm_matte(np.array([0.0, 0.1, 0.2, 0.4, 0.6, 0.7, 1.0], np.float32))
    np.testing.assert_allclose(firmed[[0, 1, 4, 5, 6]], [0, 0, 1, 1, 1], atol=1e-6)
    assert 0 < firmed[2] < firmed[3] < 1 and np.all(np.diff(firmed) >= 0)


def _real_face() -> np.ndarray:
    """The shipped clip's first face as Face Mesh sees it, in model units (centred, RMS radius 1)."""
    from talkface.face.tracker import FaceMeshTracker
    from talkface.media import read_frames

    with FaceMeshTracker() as tracker:
        points = tracker.process(next(iter(read_frames(CLIP))))[0].astype(np.float64)
    points -= points.mean(0)
    return points / np.sqrt((points**2).sum(1).mean())


def test_a_real_head_turns_the_way_the_model_says():
    """The shipped clip's first frame, its head turned 12 degrees by the warp: Face Mesh, run
    on the result, finds the face's outline moved as the warp's own moves predict."""
    from talkface.face.tracker import FaceMeshTracker
    from talkface.media import read_frames

    frame = next(iter(read_frames(CLIP)))
    with FaceMeshTracker() as tracker:
        before = tracker.process(frame)[0][:, :2]
    width = before[:, 0].max() - before[:, 0].min()
    pose = np.array([0.0, 0.0, 0.0, *before.mean(0), width / 2.6])
    target = turned(pose, 12)
    warped = warp_head(frame, pose, target)
    assert warped is not frame and warped.shape == frame.shape
    with FaceMeshTracker() as tracker:
        after = tracker.process(warped)[0][:, :2]
    # where each landmark should be now: x_after + move(x_after) = x_before, solved by iterating
    predicted = before.copy()
    for _ in range(5):
        predicted = before - head_moves(predicted, pose, target)
    # the head turns about the face's middle: the nose goes one way, the outline the other
    shift_seen, shift_predicted = (after - before)[:, 0], (predicted - before)[:, 0]
    assert shift_predicted.std() > 2  # a visible turn
    assert np.corrcoef(shift_seen, shift_predicted)[0, 1] > 0.7
    assert np.abs(shift_seen - shift_predicted).mean() < 0.5 * np.abs(shift_predicted).mean() + 1
    # outside the warp's reach the frame is untouched
    reach = int(RING * pose[5] * 2.1) + 2
    left = int(pose[3]) - reach
    if left > 0:
        np.testing.assert_array_equal(warped[:, :left], frame[:, :left])


def test_with_the_persons_matte_the_room_stays_still(tmp_path):
    """A person (a bright disc for the head, over a striped room) turned with their matte: the
    room's stripes away from the person are exactly the frame's, the head moved, and where the
    head no longer covers the room the gap is filled from the room around it."""
    from talkface.render.headwarp import warp_head

    frame = np.zeros((200, 200, 3), np.uint8)
    frame[:, ::10] = 255  # stripes: any bend of the room would show
    yy, xx = np.mgrid[0:200, 0:200]
    head = (xx - 100) ** 2 + (yy - 90) ** 2 < 45**2
    frame[head] = (200, 150, 120)
    matte = head.astype(np.float32)
    pose = np.array([0.0, 0.0, 0.0, 100.0, 95.0, 22.0])
    target = turned(pose, 20)
    plain = warp_head(frame, pose, target)
    protected = warp_head(frame, pose, target, matte)
    room = np.hypot(xx - 100, yy - 90) > 60  # clear of where the turned head can reach
    assert (plain[room] != frame[room]).any()  # without the matte the room bends near the head
    np.testing.assert_array_equal(protected[room], frame[room])
    moved = np.abs(protected[head].astype(float) - frame[head]).max(-1)
    assert (moved > 40).sum() > 30  # the head's edge moved: a strip of where it was now shows the (filled-in) room
    assert np.isfinite(protected.astype(float)).all() and protected.dtype == np.uint8


def test_the_uncovered_room_is_filled_from_the_room_not_the_person():
    """Where the turned head no longer covers what it did, the fill reads the room around the gap,
    never the person beside it: read from the person it smeared skin into the gap, which showed
    through the moved head's soft edge (a ghost of the jaw and ear at 20 degrees)."""
    from talkface.render.headwarp import warp_head

    frame = np.zeros((200, 200, 3), np.uint8)
    frame[:] = (40, 120, 40)  # a plain green room
    yy, xx = np.mgrid[0:200, 0:200]
    distance = np.hypot(xx - 100, yy - 90)
    matte = np.clip((48 - distance) / 6, 0, 1).astype(np.float32)  # a soft edge, as the segmenter's
    frame[matte > 0] = (200, 150, 120)
    pose = np.array([0.0, 0.0, 0.0, 100.0, 95.0, 35.0])  # the head's ellipsoid about as wide as the disc
    out = warp_head(frame, pose, turned(pose, 20), matte)
    moved_matte = warp_head(np.repeat((matte[..., None] * 255).astype(np.uint8), 3, -1), pose, turned(pose, 20))[..., 0] / 255
    uncovered = (matte > 0.9) & (moved_matte < 0.1)
    assert uncovered.sum() > 30  # the head moved off part of where it was
    room_like = np.abs(out[uncovered].astype(int) - (40, 120, 40)).sum(-1) < 60
    skin_like = np.abs(out[uncovered].astype(int) - (200, 150, 120)).sum(-1) < 60
    assert room_like.mean() > 0.6 and skin_like.mean() < 0.1


def test_a_clean_plate_gives_the_per_frame_fill():
    """A frame warped again and again (a photo profile) reads the uncovered room from one clean plate:
    the result is what inpainting each frame gives, away from the head's edge exactly the frame."""
    from talkface.render.headwarp import clean_plate

    frame = np.zeros((200, 200, 3), np.uint8)
    frame[:, ::10] = 255
    yy, xx = np.mgrid[0:200, 0:200]
    head = (xx - 100) ** 2 + (yy - 90) ** 2 < 45**2
    frame[head] = (200, 150, 120)
    matte = head.astype(np.float32)
    pose = np.array([0.0, 0.0, 0.0, 100.0, 95.0, 22.0])
    plate = clean_plate(frame, matte)
    assert (plate[head] != frame[head]).any() and not (np.abs(plate[head].astype(int) - [200, 150, 120]).sum(-1) < 30).any(), "the head is gone from the plate"
    for yaw in (-15, 10, 20):
        each = warp_head(frame, pose, turned(pose, yaw), matte)
        once = warp_head(frame, pose, turned(pose, yaw), matte, plate)
        room = np.hypot(xx - 100, yy - 90) > 60
        np.testing.assert_array_equal(once[room], frame[room])
        assert np.abs(once.astype(float) - each).mean() < 2.0


def test_the_moved_persons_edge_stays_as_firm_as_the_frames():
    """Where the turn stretches the head (the side turning into view), it stretches the matte's
    soft edge with it: a half-sure rim there showed an ear doubled and half see-through at 20
    degrees. The moved matte is firmed again, so the person's edge in the output is no wider than
    the frame's matte edge."""
    from talkface.render.headwarp import warp_head

    frame = np.zeros((200, 200, 3), np.uint8)
    frame[:] = (40, 120, 40)
    yy, xx = np.mgrid[0:200, 0:200]
    matte = np.clip((48 - np.hypot(xx - 100, yy - 90)) / 6, 0, 1).astype(np.float32)
    frame[matte > 0] = (200, 150, 120)
    pose = np.array([0.0, 0.0, 0.0, 100.0, 95.0, 35.0])
    source_rim = ((matte[90] > 0.05) & (matte[90] < 0.95)).sum() / 2  # px of soft edge on each side
    for yaw in (20, -20):
        out = warp_head(frame, pose, turned(pose, yaw), matte)
        share = (out[90, :, 0].astype(float) - 40) / 160  # how much of the person each pixel of the row shows
        rims = [((part > 0.05) & (part < 0.95)).sum() for part in (share[:100], share[100:])]
        assert max(rims) <= source_rim, (yaw, rims, source_rim)


def test_stored_mattes_are_the_mattes_the_warp_would_make(tmp_path):
    """finetune stores each clip frame's person matte (8-bit PNG): read back, it is the matte the
    warper makes of the frame (to 1/255), and the warper takes it instead of segmenting again."""
    from talkface.media import read_frames
    from talkface.render.frames import MatteStore, save_mattes
    from talkface.render.headwarp import HeadWarper, PersonMatter

    frames = [frame for _, frame in zip(range(3), read_frames(CLIP))]
    with PersonMatter() as matter:
        made = [matter(frame) for frame in frames]
    assert save_mattes(tmp_path / "mattes.npz", made) == 3
    stored = MatteStore(tmp_path / "mattes.npz")
    assert len(stored) == 3 and (tmp_path / "mattes.npz").stat().st_size < 60_000
    for index, matte in enumerate(made):
        assert np.abs(stored[index] - matte).max() <= 0.5 / 255 + 1e-6
        assert 0.05 < matte.mean() < 0.95  # a person and a room

    class Counted(PersonMatter):
        calls = 0

        def __call__(self, frame):
            Counted.calls += 1
            return super().__call__(frame)

    pose = np.array([0.0, 0.0, 0.0, 225.0, 200.0, 60.0])
    with HeadWarper(mattes=stored) as warper:
        warper._matter = Counted()
        warper(frames[1], 1, pose, turned(pose, 5))
        warper(frames[2], 7, pose, turned(pose, 5))  # beyond the stored ones: made here
    assert Counted.calls == 1


def test_each_pixel_reads_the_frame_where_the_grid_of_moves_says():
    from talkface.face.geometry import apply_pose

    """The moves are worked out on a grid and resized to every pixel: a frame whose red is its x
    and green its y (bicubic reads a ramp exactly) comes out with each pixel showing where it
    read the frame, which must be that pixel plus the grid's moves interpolated there (the grid's
    positions are resized into the map itself: a grid set off by one pixel reads 1.6 px off)."""
    yy, xx = np.mgrid[0:240, 0:240]
    frame = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)
    pose = np.array([0.0, 0.0, 0.0, 120.0, 125.0, 30.0])
    target = turned(pose, 15, 8)
    out = warp_head(frame, pose, target).astype(np.float64)
    step = GRID_STEP
    first = (step - 1) / 2 - step  # the grid warp_head uses: a step before its box, half a step in (box at 0 here)
    gx = np.arange(first, 240 + step, step)
    here = np.stack(np.meshgrid(gx, gx), -1)
    centre = apply_pose(HEAD_CENTRE[None, None], target[None])[0, 0, :2]
    moves = cap_stretch(grid_moves(gx, gx, pose, target, None, max(0.08 * 30 * 2.1 / step, 0.5)) + here, gx, gx, centre) - here
    points = np.array([[60, 90], [120, 125], [150, 60], [185, 170], [100, 200]], np.float64)
    cells = (points - first) / step
    k = np.floor(cells).astype(int)
    f = cells - k
    expected = points + sum(
        moves[k[:, 1] + dy, k[:, 0] + dx] * (((1 - f[:, :1]) if dx == 0 else f[:, :1]) * ((1 - f[:, 1:]) if dy == 0 else f[:, 1:]))
        for dy in (0, 1) for dx in (0, 1)
    )
    seen = out[points[:, 1].astype(int), points[:, 0].astype(int), :2]
    assert np.abs(expected).max() < 239 and np.abs(moves).max() > 3  # a real turn, read within the frame
    np.testing.assert_allclose(seen, expected, atol=0.6)


def test_the_remap_keeps_the_detail_a_bicubic_one_keeps_where_plain_bilinear_blurs_it():
    """sharp_remap (bilinear on a frame sharpened first, for speed) against OpenCV's bicubic remap,
    on a textured frame shifted by a smoothly varying sub-pixel move: about as sharp (fine
    detail's variance within 15 %) and nearer bicubic's picture, where plain bilinear loses
    more than a fifth of the detail."""
    from talkface.render.headwarp import sharp_remap

    texture = cv2.GaussianBlur(np.random.default_rng(3).normal(0, 1, (160, 160)).astype(np.float32), (0, 0), 1.2)
    frame = np.repeat(np.clip(128 + texture * (40 / texture.std()), 0, 255).astype(np.uint8)[..., None], 3, -1)
    yy, xx = np.mgrid[0:160, 0:160].astype(np.float32)
    maps = cv2.convertMaps(np.dstack([xx + 2.3 * np.sin(yy / 9), yy + 1.7 * np.cos(xx / 7)]), None, cv2.CV_16SC2)
    bicubic = cv2.remap(frame, *maps, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    bilinear = cv2.remap(frame, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    sharp = sharp_remap(frame, *maps)
    inner = (slice(8, -8), slice(8, -8))
    detail = lambda image: cv2.Laplacian(image[..., 0], cv2.CV_32F)[inner].var()  # noqa: E731
    assert 0.85 < detail(sharp) / detail(bicubic) < 1.15  # 0.97 (the frame's own: 0.90)
    assert detail(bilinear) / detail(bicubic) < 0.8  # 0.72
    apart = lambda image: np.abs(image.astype(int) - bicubic)[inner].mean()  # noqa: E731
    assert apart(sharp) < 0.6 * apart(bilinear)  # 1.5 and 3.0 grey levels


def test_what_the_turn_leaves_in_place_keeps_its_own_pixels():
    """The sharpening that keeps a remapped head as sharp as bicubic (sharp_remap) is not given to
    pixels the warp leaves where they were (beyond RING head radii, where its moves have faded out):
    there the frame comes back unchanged, while the turned head does change."""
    from talkface.render.headwarp import HEAD_CENTRE, RING, _project

    texture = cv2.GaussianBlur(np.random.default_rng(4).normal(0, 1, (240, 240)).astype(np.float32), (0, 0), 1.0)
    frame = np.repeat(np.clip(128 + texture * (40 / texture.std()), 0, 255).astype(np.uint8)[..., None], 3, -1)
    pose = np.array([0.0, 0.0, 0.0, 120.0, 125.0, 22.0])
    target = turned(pose, 8)
    out = warp_head(frame, pose, target)
    centre = _project(HEAD_CENTRE[None], target)[0]
    yy, xx = np.mgrid[0:240, 0:240]
    far = np.hypot(xx - centre[0], yy - centre[1]) > (RING + 0.3) * 22 * 2.1  # beyond the warp's reach on every ray
    assert far.sum() > 5000
    np.testing.assert_array_equal(out[far], frame[far])
    assert np.abs(out[~far].astype(int) - frame[~far]).mean() > 5


def _textured_room(seed: int = 0) -> np.ndarray:
    """A room with texture (blotches a few px wide, as leaves or water), RGB uint8 200 x 200."""
    blotches = cv2.GaussianBlur(np.random.default_rng(seed).normal(0, 1, (200, 200)).astype(np.float32), (0, 0), 1.5)
    return np.repeat(np.clip(100 + blotches * (30 / blotches.std()), 0, 255).astype(np.uint8)[..., None], 3, -1)


def test_the_gap_beside_the_room_takes_the_room_mirrored():
    """A gap's pixels near the room read the room mirrored across the gap's edge (its texture goes
    on), fading to the smooth fill deeper in; where the mirror would read beyond the room, and
    beyond the reach, the smooth fill stays."""
    from talkface.render.headwarp import mirror_room

    image = _textured_room()
    hole = np.zeros((200, 200), bool)
    hole[:, 100:160] = True
    room = ~hole
    room[:, 170:] = False  # someone else stands there: neither room nor gap
    filled = np.full_like(image, 77)
    out = mirror_room(image, filled, hole, room, reach=24)
    depth = np.arange(11)  # px into the gap, up to half the reach: wholly the mirror
    np.testing.assert_array_equal(out[20:180, 100 + depth], image[20:180, 98 - depth])
    assert (out[20:180, 100 + 24 :][:, :20] == 77).all()  # beyond the reach: the fill
    near_other = out[20:180, 140:151]  # its nearest room is the strip at 160-169, its mirror beyond it, on the other person
    assert (near_other == 77).all()
    assert (out[20:180, 156:160] != 77).any()  # nearer that strip, the mirror reads the strip
    assert out[:, 100:110].std() > 0.8 * image[:, 80:100].std()  # the texture goes on


def test_a_turned_head_uncovers_the_rooms_texture_not_a_flat_band():
    """The room a turned head uncovers keeps the room's texture near its edge: filled flat (the mean
    around it), the band's edge along the head's old outline read as a second outline."""
    frame = _textured_room(1)
    yy, xx = np.mgrid[0:200, 0:200]
    matte = np.clip((48 - np.hypot(xx - 100, yy - 90)) / 2, 0, 1).astype(np.float32)
    frame[matte > 0] = (200, 150, 120)
    pose = np.array([0.0, 0.0, 0.0, 100.0, 95.0, 35.0])
    out = warp_head(frame, pose, turned(pose, 20), matte)
    moved_matte = warp_head(np.repeat((matte[..., None] * 255).astype(np.uint8), 3, -1), pose, turned(pose, 20))[..., 0] / 255
    uncovered = (matte > 0.99) & (moved_matte < 0.01)
    inside = cv2.erode(uncovered.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # clear of the gap's own edges
    assert inside.sum() > 50
    room = np.hypot(xx - 100, yy - 90) > 60
    assert out[..., 0][inside].std() > 0.4 * out[..., 0][room].std()  # filled flat: 0.07 of it


def test_no_band_beside_the_head_is_spread_wider_than_the_cap():
    """Rows of grid reads that cross a sliver slowly (the ellipsoid's rim seen edge-on: 0.3 px of
    frame per px) and then faster than one for one: capped, every step reads at least
    1/MAX_STRETCH of a step further out, the lead is given back where the reads move fast, and
    the reads beyond, and the face's one-for-one middle, are left as they were."""
    step = 6.0
    gx = np.arange(0, 60) * step
    slopes = np.ones(59)
    slopes[35:45] = 0.3  # the sliver, right of the centre (column 30)
    slopes[45:52] = 1.6  # then the reads run ahead (the warp fading out)
    slopes[10:15] = -0.2  # a fold left of the centre
    slopes[2:10] = 1.8
    row = np.concatenate([[0.0], np.cumsum(slopes * step)])
    reads = np.stack(np.broadcast_arrays(row[None, :].repeat(5, 0), np.arange(5)[:, None] * step), -1).astype(np.float64)
    gy = np.arange(5) * step
    capped = cap_stretch(reads, gx, gy, np.array([30 * step, 2 * step]))
    steps = np.diff(capped[..., 0], axis=1) / step
    assert steps.min() >= 1 / MAX_STRETCH - 1e-9
    assert np.diff(reads[..., 0], axis=1).min() / step < 0  # the fold was there
    np.testing.assert_allclose(capped[:, 15:36], reads[:, 15:36])  # the middle, as it was
    np.testing.assert_allclose(capped[:, 55:], reads[:, 55:])  # the lead given back
    np.testing.assert_allclose(capped[:, :3], reads[:, :3])
    np.testing.assert_allclose(capped[..., 1], reads[..., 1])  # a straight column: nothing to cap


def test_a_turn_of_20_degrees_spreads_no_band_beside_the_face_past_the_cap():
    """A real face turned 20 degrees either way: the ellipsoid's rim and the face correction's
    fade spread parts of the frame two to three times as wide (a held-out photo's ear and cheek
    edge showed as a smeared flap beside the drawn cheek), or fold them back; the grid the warp
    remaps through spreads none past MAX_STRETCH along a row."""
    from talkface.face.geometry import apply_pose

    face = _real_face()
    gx, gy = np.arange(0, 400, GRID_STEP, dtype=np.float64), np.arange(0, 440, GRID_STEP, dtype=np.float64)
    here = np.stack(np.meshgrid(gx, gy), -1)
    for yaw in (20, -20):
        target = turned(POSE, yaw)
        reads = grid_moves(gx, gy, POSE, target, face, max(0.08 * 70 * 2.1 / GRID_STEP, 0.5)) + here
        centre = apply_pose(HEAD_CENTRE[None, None], target[None])[0, 0, :2]
        capped = cap_stretch(reads, gx, gy, centre)
        column = np.searchsorted(gx, centre[0])
        def least(r):  # the slowest step outward along the rows through the head (per px of output)
            rows = slice(np.searchsorted(gy, 220 - 140), np.searchsorted(gy, 220 + 140))
            right = np.diff(r[rows, column:, 0], axis=1)
            left = np.diff(r[rows, : column + 1, 0], axis=1)  # reads fall going outward to the left
            return min(right.min(), left.min()) / GRID_STEP
        assert least(reads) < 0.2  # spread five times as wide or more, or folded
        assert least(capped) >= 1 / MAX_STRETCH - 1e-6
