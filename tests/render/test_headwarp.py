"""Whole-head warping: the geometry of the moves, and a real head turned in a real frame."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.render.headwarp import GRID_STEP, MIN_DEGREES, RING, grid_moves, head_moves, needs_warp, warp_head

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
    # the warp's grid makes the same moves by splatting and blurring (within a pixel)
    gx, gy = np.arange(0, 400, GRID_STEP, dtype=np.float64), np.arange(0, 440, GRID_STEP, dtype=np.float64)
    exact_grid = head_moves(np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2), POSE, target, face).reshape(len(gy), len(gx), 2)
    assert np.abs(grid_moves(gx, gy, POSE, target, face) - exact_grid).max() < 1.0


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
