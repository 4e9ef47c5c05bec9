"""render/room.py: the room behind the person from the whole clip, and the head warp reading it."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.render.headwarp import warp_head
from talkface.render.room import FILE, RoomPlate, build_room_plate, load_room_plate, save_room_plate

from .test_headwarp import turned

SIZE = 200


def _room(shift: int = 0) -> np.ndarray:
    """A textured room (stripes and a checker: a fill from around a gap cannot guess it)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    room = np.zeros((SIZE, SIZE, 3), np.uint8)
    room[..., 0] = np.where(((xx + shift) // 7) % 2 == 0, 230, 30)
    room[..., 1] = np.where(((yy // 9) + (xx + shift) // 9) % 2 == 0, 200, 60)
    room[..., 2] = 90
    return room


def _clip(count: int = 40, camera_moves: bool = False):
    """Frames of a person (a soft disc, the head) swaying over the room, and their mattes."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frames, mattes = [], []
    for t in range(count):
        centre = 100 + 12 * np.sin(t / 4)
        matte = np.clip((48 - np.hypot(xx - centre, yy - 90)) / 6, 0, 1).astype(np.float32)
        frame = _room(3 * t if camera_moves else 0)
        frame = (frame * (1 - matte[..., None]) + np.array([200, 150, 120]) * matte[..., None]).astype(np.uint8)
        frames.append(frame)
        mattes.append(matte)
    return frames, mattes


def test_the_plate_is_the_room_the_clip_showed():
    frames, mattes = _clip()
    plate, record = build_room_plate(frames, mattes)
    assert record["still_camera"] and plate is not None
    room = _room()
    error = np.abs(plate.image[plate.seen].astype(int) - room[plate.seen])
    assert error.mean() < 0.5 and error.max() <= 10  # a matte below ROOM_BELOW still holds a little of the person
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    assert plate.seen[np.hypot(xx - 100, yy - 90) > 70].all()  # the room far from the head: always seen
    assert not plate.seen[90, 100]  # the head's middle: never
    assert plate.seen[90, 100 - 50] and plate.seen[90, 100 + 50]  # beside the head: seen as it swayed
    unseen = plate.image[~plate.seen].astype(int)
    assert (np.abs(unseen - [200, 150, 120]).sum(-1) > 60).mean() > 0.95 and unseen.std(0).max() > 5, "filled from the room, not left black or the person"


def test_the_unseen_room_beside_the_seen_carries_its_texture():
    """The room no frame showed, near what was seen, is the room mirrored into it (stripes go on),
    not a flat mean whose edge a turned head's uncovering showed as a second outline."""
    frames, mattes = _clip()
    mirrored, _ = build_room_plate(frames, mattes)
    flat, _ = build_room_plate(frames, mattes, mirror=0)
    from scipy.ndimage import distance_transform_edt

    near = ~mirrored.seen & (distance_transform_edt(~mirrored.seen) <= 6)  # the unseen band's first 6 px
    assert near.sum() > 100
    texture = [plate.image[..., 0][near].astype(float).std() for plate in (mirrored, flat)]
    assert texture[0] > 1.5 * texture[1] and texture[0] > 0.8 * _room()[..., 0].std()  # flat: 0.5 of the room's
    np.testing.assert_array_equal(mirrored.image[mirrored.seen], flat.image[flat.seen])  # what was seen: the same


def test_a_moving_camera_gives_no_plate():
    frames, mattes = _clip(camera_moves=True)
    plate, record = build_room_plate(frames, mattes)
    assert plate is None and not record["still_camera"] and record["median_apart_levels"] > 8


def test_the_plate_is_stored_and_read_back(tmp_path):
    frames, mattes = _clip()
    plate, record = build_room_plate(frames, mattes)
    save_room_plate(tmp_path / FILE, plate, record)
    back = load_room_plate(tmp_path, (SIZE, SIZE))
    np.testing.assert_array_equal(back.image, plate.image)
    np.testing.assert_array_equal(back.seen, plate.seen)
    assert load_room_plate(tmp_path, (SIZE + 2, SIZE)) is None  # frames of another size: not this plate
    save_room_plate(tmp_path / FILE, None, {"median_apart_levels": 20.0})  # a moving camera: none
    assert load_room_plate(tmp_path, (SIZE, SIZE)) is None


@pytest.mark.parametrize("version, read", [(1, True), (3, False), (0, False)])
def test_a_plate_of_the_earlier_format_is_still_read(tmp_path, version, read):
    """Format 1 filled the unseen room flat: still a plate of the room (a finetune again makes the
    new one); a format this code does not know is not read."""
    frames, mattes = _clip()
    plate, record = build_room_plate(frames, mattes)
    save_room_plate(tmp_path / FILE, plate, record)
    arrays = dict(np.load(tmp_path / FILE))
    arrays["format"] = np.array(version)
    np.savez(tmp_path / FILE, **arrays)
    back = load_room_plate(tmp_path, (SIZE, SIZE))
    assert (back is not None) == read


@pytest.mark.parametrize("damage", ["gone", "empty", "cut", "garbage", "bad png"])
def test_a_missing_or_damaged_plate_is_none(tmp_path, damage):
    frames, mattes = _clip()
    plate, record = build_room_plate(frames, mattes)
    path = tmp_path / FILE
    if damage == "bad png":
        save_room_plate(path, RoomPlate(plate.image, plate.seen), record)
        import io

        arrays = dict(np.load(path))
        arrays["image"] = arrays["image"][:100]
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path.write_bytes(buffer.getvalue())
    elif damage != "gone":
        save_room_plate(path, plate, record)
        data = path.read_bytes()
        path.write_bytes({"empty": b"", "cut": data[: len(data) // 2], "garbage": b"\x00\xff" * 500}[damage])
    assert load_room_plate(tmp_path, (SIZE, SIZE)) is None


def test_a_turned_head_uncovers_the_room_the_plate_holds_without_a_ghost():
    """The head turned 20 degrees uncovers room beside it: read from the plate it is the room
    (within a few grey levels), where the fill from around the gap was a smear of the stripes; and
    the old head's soft rim, which was taken as room and showed as a second outline, is room too."""
    frames, mattes = _clip()
    plate, _ = build_room_plate(frames, mattes)
    frame, matte = frames[0], mattes[0]
    pose = np.array([0.0, 0.0, 0.0, 100.0, 95.0, 35.0])
    room = _room()
    for yaw in (20, -20):
        filled = warp_head(frame, pose, turned(pose, yaw), matte)
        read = warp_head(frame, pose, turned(pose, yaw), matte, plate=plate)
        moved = warp_head(np.repeat((matte[..., None] * 255).astype(np.uint8), 3, -1), pose, turned(pose, yaw))[..., 0] / 255
        shown = (matte > 0.02) & (moved < 0.02)  # the old head and its rim, now room
        assert shown.sum() > 100
        error_read = np.abs(read[shown].astype(int) - room[shown]).mean()
        error_filled = np.abs(filled[shown].astype(int) - room[shown]).mean()
        assert error_read < 4 and error_filled > 3 * error_read, (yaw, error_read, error_filled)
        far = ~(np.hypot(*np.mgrid[0:SIZE, 0:SIZE][::-1] - np.array([100, 90])[:, None, None]) < 80)
        np.testing.assert_array_equal(read[far], frame[far])  # the room away from the head: the frame's own


def test_the_plate_is_brought_to_the_frames_exposure():
    """A frame a little brighter than the clip (auto exposure): the plate put in it is too."""
    frames, mattes = _clip()
    plate, _ = build_room_plate(frames, mattes)
    frame = np.clip(frames[0].astype(int) + 12, 0, 255).astype(np.uint8)
    pose = np.array([0.0, 0.0, 0.0, 100.0, 95.0, 35.0])
    read = warp_head(frame, pose, turned(pose, 20), mattes[0], plate=plate)
    moved = warp_head(np.repeat((mattes[0][..., None] * 255).astype(np.uint8), 3, -1), pose, turned(pose, 20))[..., 0] / 255
    shown = (mattes[0] > 0.02) & (moved < 0.02)
    brighter = np.clip(_room().astype(int) + 12, 0, 255)
    assert np.abs(read[shown].astype(int) - brighter[shown]).mean() < 5


def test_large_frames_make_the_plate_from_fewer_of_them(monkeypatch):
    """The plate holds at most PLATE_BYTES of frames (a 4K clip: 12 frames, not 48)."""
    import talkface.render.room as room

    frames, mattes = _clip()
    monkeypatch.setattr(room, "PLATE_BYTES", SIZE * SIZE * 3 * 20)
    assert build_room_plate(frames, mattes)[1]["frames"] == 20
    monkeypatch.setattr(room, "PLATE_BYTES", 1)
    plate, record = build_room_plate(frames, mattes)
    assert record["frames"] == room.MIN_PLATE_FRAMES and plate is not None
