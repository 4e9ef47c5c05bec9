"""Whole-head warping: turn the head a background frame shows to the pose the face is drawn at.

Keyframe matching (background.py) can only pick clip frames whose head angles the clip had.
When controls ask for another view (`--yaw 15`, `--pitch -10`, `--frontal`), the face is drawn
at the new angle but the hair, ears and the head's outline would be the background frame's.
So the backgrounds are matched to the motion as it was before the controls, and this module
turns each one's head by the angles the controls added.

The head is modelled as an ellipsoid around the face mesh (the skull behind it, hair and ears
on its outline). Each output pixel inside the ellipsoid's outline at the new pose is cast onto
its front surface (the projection is scaled orthographic, so that is one quadratic per pixel),
and reads the frame where that surface point is at the frame's own pose. Outside the outline
the move of the nearest outline point carries on, fading to nothing over RING head radii, so
the shoulders bend a little near the head and not at all beyond. The face itself is drawn
over all this by the compositor, exactly at the new pose. One cv2.remap applies it.

Where the rim turns into view, the frame saw the side of the head edge-on: the ellipsoid would
spread that sliver (hair, an ear, skin beyond Face Mesh's outline) over a band several times as
wide, a smeared flap beside the drawn cheek. No part of the frame is spread more than MAX_STRETCH
times along a row or a column (`cap_stretch`): the reads cross the sliver faster and carry on into
what lies beyond it.

The ellipsoid's front stands up to a head-radius before the real face (whose cheeks and eyes lie
far behind the nose), so on its own it would carry the frame's face, brows, jaw line and ears
sideways by more than the drawn face moves: the drawn face would then sit off-centre in its
own head, which reads as a smaller turn (measured: half the angle asked). Given the person's
face mesh (`face`), the warp is corrected to move every mesh point exactly as the drawn face
does, the correction carried smoothly off the face over FACE_REACH.

With a person matte (MediaPipe selfie segmentation, `HeadWarper`), only the person moves: the
room stays straight, and where the turned head no longer covers what the frame's head did, the
room is read from the clip's room plate (render/room.py: the room as other frames showed it),
and what no frame showed is filled from the room around the gap (`fill_from_room`).
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.errors import CacheError
from talkface.face.geometry import apply_pose, euler_to_rotation

MIN_DEGREES = 1.0  # head turns below this leave the frame as it is
GRID_STEP = 6  # px between the points the warp is computed at (then resized to every pixel); 4 cost 34 ms a 720² frame, 6 22 ms, same picture (mean 0.09 grey levels)
GRID_SHARE = 0.04  # a larger head's grid is this share of its largest radius apart (the moves are blurred over SOFTEN of it)
RING = 1.6  # the warp has faded out at this many head radii (along each ray from the head's centre)
SOFTEN = 0.08  # the moves are blurred over this share of the head's radius: a rigid ellipsoid squeezes
# its rim hard, while a real head's outline (hair) is softer; blurring spreads that squeeze
MATTE_FIRM = (0.15, 0.6)  # the person matte's values mapped to 0 and 1 (firm_matte)
UNCOVERED = 0.1  # where the moved matte is this much below the frame's, the room behind the person shows: it is filled
GAP_MARGIN = 2  # px the filled gap reaches past what the head uncovered
FILL_WIDTH = 3.0  # px, the narrowest Gaussian the uncovered room is filled with (fill_from_room)
FILL_SURE = 0.05  # the share of a fill's neighbourhood that must be room
FILL_REACH = 40  # px around the uncovered gap the fill works in
MIRROR_REACH = 24  # px: the uncovered room this near the room takes it mirrored (its texture), fading to the smooth fill (mirror_room)
MIRROR_SMOOTH = 2.0  # px, the Gaussian the mirror's nearest room pixels are smoothed with
DENSE_HOLE = 8  # a hole of more than 1/8 of its box is filled level by level (`_fill_dense`), a thinner one point by point
_GROW = np.ones((2 * GAP_MARGIN + 1,) * 2, np.uint8)  # dilation by GAP_MARGIN
PLATE_PERSON = 0.02  # with a room plate (render/room.py): the frame's person is where its matte is above this,
PLATE_RIM = 3  # grown by this many px (the soft halo the segmenter leaves outside a head), and the plate is put there
_RIM = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * PLATE_RIM + 1,) * 2)
_AROUND_SMALL = np.ones((9, 9), np.uint8)  # the room within 16 px of the person (4 px at a quarter of the size) sets the plate's exposure
_RIM_SMALL = np.ones((3, 3), np.uint8)  # PLATE_RIM at a quarter of the size
# the frame is sharpened by this 3-tap kernel, [-a, 1 + 2a, -a] along each axis, before its bilinear
# remap (`sharp_remap`): a pixel read at offset t between two is blurred by about t(1 - t)/2 of its
# second difference, and 0.1 matches the fine detail OpenCV's bicubic remap (its A = -0.75) keeps on
# average (its mean response over 0.12-0.3 cycles/px within 2.5 %; on a 900² vlogger's turned frames the
# Laplacian 1.00 of bicubic's, 56 dB from its picture, where plain bilinear kept 0.73 of the detail),
# at a fifth of bicubic's time (OpenCV's bilinear remap is vectorised, its bicubic not)
PREFILTER = 0.1
_PREFILTER = np.array([-PREFILTER, 1 + 2 * PREFILTER, -PREFILTER], np.float32)
# bilinear blurs a pixel read between pixels, not one read on a pixel: a pixel that moves less than
# this (px) is sharpened in proportion, one that stays put not at all (it would only be sharpened;
# bicubic leaves it as it was). Beyond it the read falls anywhere between pixels, as on average.
SHARPEN_FROM = 0.5
MATTES_KEPT = 64  # clip frames whose person matte HeadWarper keeps (backgrounds repeat as the clip plays)
# the head in model units (the face mesh spans about x +-1.3, y +-1.6, z -0.7..1.2 around its
# centroid, one unit about 5.4 cm; y down, z away from the camera): the skull's centre behind the
# face, a head's radii. The front stands at the cheeks (z -0.25); the depth is a real head's, 3.5
# units (19 cm) from brow to back (2.5 units deep, centred at z 1.0, carried the outline too little:
# clip frames turned to a real frame's yaw read 0.77 of its turn, 0.82 this deep). The outline
# passes over the ears (x +-1.48 at z 1.2, 0.8 cm beyond the mesh's points beside the ears):
# through those points (x radius 1.35) the ears sat at the rim, where the ellipsoid is seen edge-on,
# and a turn of 20 degrees stretched the ear turning into view to twice its width; the turned
# head's outline met the real turned head's less (on three people a turn took away 0.26-0.50 of
# the outline's mismatch with the real one, now 0.30-0.60: benchmarks/freeview.py), and the
# landmarks read about the same share of the real turn (0.85 on average, now 0.86; wider still,
# x radius 1.6 and 1.8, read less of it).
HEAD_CENTRE = np.array([0.0, -0.3, 1.5])
HEAD_RADII = np.array([1.5, 2.1, 1.75])
FACE_POINTS = 120  # mesh points the face correction is carried by (a spread-out subset)
FACE_REACH = 0.2  # model units: the width of each mesh point's influence (about 1.1 cm)
FACE_FADE = 0.5  # the correction fades off the face where the points' summed weight falls below this
FACE_PASSES = 8  # passes of successive correction: the face's points meet the mesh's moves 0.88-0.92 of the way
MAX_STRETCH = 2.0  # the warp widens no part of the frame more than this along a row or a column (cap_stretch):
# uncapped, a held-out photo's ear and cheek edge spread 6-100 times (and folded back) into a smeared flap
# beside the drawn cheek at 20 degrees; 2 takes the fold and the widest smear away (a band of cheek still shows
# where the cheek reaches past Face Mesh's outline); 1.25 took that too, but narrowed the side of the head that
# a real turn widens: the visible turn read 0.06-0.10 less of the angle asked (benchmarks/freeview.py)


def needs_warp(source_pose: np.ndarray, target_pose: np.ndarray) -> bool:
    """The head's angles differ enough between the frame and the output to be seen."""
    difference = np.degrees(np.abs(np.asarray(target_pose[:3], np.float64) - np.asarray(source_pose[:3], np.float64)))
    return bool(np.isfinite(difference).all() and difference.max() >= MIN_DEGREES)


def warp_head(
    frame: np.ndarray,
    source_pose: np.ndarray,
    target_pose: np.ndarray,
    person: np.ndarray | None = None,
    room: np.ndarray | None = None,
    face: np.ndarray | None = None,
    plate=None,
) -> np.ndarray:
    """The frame with its head turned from `source_pose` to `target_pose`.

    Args:
        frame: RGB uint8 (H, W, 3), showing the head at `source_pose`.
        source_pose, target_pose: (6,) poses (pitch, yaw, roll, x, y, scale) of the face model;
            the output seats its head where the frame's head is, so mostly the angles differ.
        person: optional (H, W) matte of the person in `frame` (float, 1: person; or uint8, 255): with it only the
            person is moved, and the room the head uncovers is filled from the room around it.
        room: optional (H, W, 3) the frame with the person already filled away (`clean_plate`):
            the uncovered room is read from it instead of being filled for this frame.
        face: optional (V, 3) the person's face mesh in model units (MeshFaceModel.mean_shape):
            the warp then moves the face, brows, jaw line and ears with the drawn face.
        plate: optional render/room.py RoomPlate, the room as the whole clip showed it: with
            `person`, wherever the frame's person and their rim were, the room is read from it.

    Returns:
        A new frame (the input is not changed), or the frame itself where the poses barely differ.
    """
    source_pose, target_pose = np.asarray(source_pose, np.float64), np.asarray(target_pose, np.float64)
    if not needs_warp(source_pose, target_pose):
        return frame
    height, width = frame.shape[:2]
    centre = _project(HEAD_CENTRE[None], target_pose)[0]
    reach = RING * target_pose[5] * HEAD_RADII.max()
    x0, y0 = np.maximum(np.floor(centre - reach).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(centre + reach).astype(int) + 1, [width, height])
    step = max(GRID_STEP, int(GRID_SHARE * target_pose[5] * HEAD_RADII.max()))
    if x1 - x0 < 2 * step or y1 - y0 < 2 * step:  # the head is outside the frame
        return frame
    # the grid starts a step before the box and half a step in: resized `step` times (bilinear),
    # its pixel x' falls exactly on x0 - step + x', so the grid's points, each with where it
    # reads the frame, resize straight into the remap's map (no per-pixel sum)
    first = (step - 1) / 2 - step
    gx = np.arange(x0 + first, x1 + step, step, dtype=np.float64)
    gy = np.arange(y0 + first, y1 + step, step, dtype=np.float64)
    soften = max(SOFTEN * target_pose[5] * HEAD_RADII.max() / step, 0.5)
    moves = grid_moves(gx, gy, source_pose, target_pose, face, soften)
    here = np.stack(np.meshgrid(gx, gy), -1)
    reads = cap_stretch(moves + here, gx, gy, centre)
    moves = reads - here
    sharpen = np.minimum(np.hypot(moves[..., 0], moves[..., 1]) * (1 / SHARPEN_FROM), 1).astype(np.float32)
    # the part of the frame the maps read (the box, moved; 2 px round it for the taps and the
    # sharpening): remapped from there only, so only it is sharpened
    flat = reads.reshape(-1, 2)
    rx0, ry0 = np.clip(np.floor(flat.min(0)).astype(int) - 2, 0, [width - 1, height - 1])
    rx1, ry1 = np.clip(np.ceil(flat.max(0)).astype(int) + 3, [rx0 + 1, ry0 + 1], [width, height])
    reads -= (rx0, ry0)
    source, read = frame[ry0:ry1, rx0:rx1], (slice(ry0, ry1), slice(rx0, rx1))
    dense = cv2.resize(reads.astype(np.float32), (len(gx) * step, len(gy) * step), interpolation=cv2.INTER_LINEAR)
    # how much each pixel of the read part is sharpened: as much as its move asks where it lies in
    # the box (a pixel that moves less than SHARPEN_FROM reads within that of itself), none beyond
    weight = np.zeros(source.shape[:2], np.float32)
    ix0, iy0, ix1, iy1 = max(x0, rx0), max(y0, ry0), min(x1, rx1), min(y1, ry1)
    if ix1 > ix0 and iy1 > iy0:
        shares = cv2.resize(sharpen, (len(gx) * step, len(gy) * step), interpolation=cv2.INTER_LINEAR)[step : step + y1 - y0, step : step + x1 - x0]
        weight[iy0 - ry0 : iy1 - ry0, ix0 - rx0 : ix1 - rx0] = shares[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
    # fixed-point maps (1/32 px), shared by the frame's remap and the matte's
    map_xy, map_fraction = cv2.convertMaps(dense[step : step + y1 - y0, step : step + x1 - x0], None, cv2.CV_16SC2)
    out = frame.copy()
    if person is None:
        out[y0:y1, x0:x1] = sharp_remap(source, map_xy, map_fraction, weight)
        return out
    person = _matte_bytes(person)
    matte = person[y0:y1, x0:x1]
    # firmed again: where the warp stretches the head (an ear turning into view), it stretches the
    # matte's soft edge with it, and a half-sure rim showed the ear doubled, half see-through
    moved_matte = cv2.LUT(cv2.remap(person[read], map_xy, map_fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), _FIRM)
    moved = sharp_remap(source, map_xy, map_fraction, weight)
    if room is not None:
        return _blend_person(out, moved, room[y0:y1, x0:x1], moved_matte, x0, y0)
    room = frame[y0:y1, x0:x1]
    if plate is not None:  # all the room the frame's person hid, from the clip's plate: nothing left to fill
        return _blend_person(out, moved, _room_from_plate(room, matte, plate.image[y0:y1, x0:x1], plate.seen[y0:y1, x0:x1]), moved_matte, x0, y0)
    matte = matte.astype(np.float32) * np.float32(1 / 255)
    uncovered = (matte - moved_matte > UNCOVERED).astype(np.uint8)
    if uncovered.any():  # the room the head hid shows now, if only in part: filled from around it
        gap = cv2.dilate(uncovered, _GROW) & (moved_matte < 0.95).astype(np.uint8)
        gx0, gy0, gw, gh = cv2.boundingRect(gap)
        margin = FILL_REACH  # the fill reads this far around the gap: work in that box only
        ax0, ay0 = max(gx0 - margin, 0), max(gy0 - margin, 0)
        ax1, ay1 = min(gx0 + gw + margin, gap.shape[1]), min(gy0 + gh + margin, gap.shape[0])
        # read from the room only: read from the person beside the gap (as inpainting did), their
        # skin smeared into it and showed through the moved head's soft edge (a ghost jaw and ear)
        person_there = cv2.dilate((matte[ay0:ay1, ax0:ax1] > UNCOVERED).astype(np.uint8), _GROW)
        hole = gap[ay0:ay1, ax0:ax1].astype(bool)
        room = room.copy()
        room[ay0:ay1, ax0:ax1] = fill_from_room(room[ay0:ay1, ax0:ax1], hole, ~hole & (person_there == 0), MIRROR_REACH)
    return _blend_person(out, moved, room, moved_matte, x0, y0)


def cap_stretch(reads: np.ndarray, gx: np.ndarray, gy: np.ndarray, centre: np.ndarray, most: float | None = None) -> np.ndarray:
    """Grid `reads` ((len(gy), len(gx), 2): where each point of the evenly spaced grid `gx`, `gy`
    reads the frame) with no part widened more than `most` (MAX_STRETCH) along a row (x) or a
    column (y), going outward from `centre` (px).

    Where the ellipsoid's rim turns into view, a sliver the frame saw edge-on (the side of the
    head: hair, an ear, the skin beyond Face Mesh's outline) was spread over a band several times
    as wide, and read as a smeared second cheek or a huge ear beside the drawn face. Capped, the
    reads cross the sliver at least 1/`most` as fast and carry on into what lies beyond it (more
    hair, the room: the person matte follows the same maps); the lead they gain is given back as
    soon as the reads beyond move fast enough to spare it, so the warp still fades out where it did.
    Within the face the reads move about one for one, and nothing changes there."""
    most = MAX_STRETCH if most is None else most
    if not np.isfinite(most):  # no cap
        return reads
    out = reads.copy()
    column = int(np.clip(np.searchsorted(gx, centre[0]), 1, len(gx) - 1))
    row = int(np.clip(np.searchsorted(gy, centre[1]), 1, len(gy) - 1))
    out[..., 0] = _cap_rows(reads[..., 0], column, (gx[1] - gx[0]) / most)
    out[..., 1] = _cap_rows(reads[..., 1].T, row, (gy[1] - gy[0]) / most).T
    return out


def _cap_rows(reads: np.ndarray, start: int, least: float) -> np.ndarray:
    """`cap_stretch` along each row of `reads` ((rows, n): one coordinate): from column `start`
    outward both ways, each step reads at least `least` px further out than the one before."""
    steps = np.diff(reads, axis=1)
    if steps[:, start - 1 :].min() >= least and steps[:, :start].min() >= least:  # nothing spread past the cap (most turns)
        return reads
    out = reads.copy()
    # rightward the steps from column start - 1 on, leftward those from start - 1 down (each step once)
    for direction, columns in ((1, range(start, reads.shape[1])), (-1, range(start - 2, -1, -1))):
        lead = np.zeros(reads.shape[0])  # how far ahead of its own reads each row is now
        for i in columns:
            before = i - direction
            step = direction * (reads[:, i] - reads[:, before])  # how far out this step reads, as the warp has it
            taken = np.maximum(step, least)  # at least `least`
            lead += taken - step
            spare = np.minimum(lead, np.maximum(step - least, 0))  # where the warp reads faster, the lead is given back
            lead -= spare
            out[:, i] = reads[:, i] + direction * lead
    return out


def sharp_remap(frame: np.ndarray, map_xy: np.ndarray, map_fraction: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """`frame` remapped through cv2.remap's maps (float ones, or cv2.convertMaps' fixed-point pair) about as sharp as
    a bicubic remap (plain bilinear blurs a head by a quarter), in a fifth of its time: the bilinear
    remap of the frame sharpened by PREFILTER. (Cheap enough to remap a whole box: bicubic was
    remapped only where the person showed, band by band.) `weight`: (H, W) float32 share of the
    sharpening at each of `frame`'s pixels (see SHARPEN_FROM); None: all of it."""
    source = _sharpened(frame)
    if weight is not None:
        source = cv2.blendLinear(source, frame, weight, 1 - weight)
    return cv2.remap(source, map_xy, map_fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _sharpened(frame: np.ndarray) -> np.ndarray:
    """`frame` with PREFILTER's sharpening, ready for a bilinear remap."""
    return cv2.sepFilter2D(frame, -1, _PREFILTER, _PREFILTER, borderType=cv2.BORDER_REPLICATE)


def _room_from_plate(room: np.ndarray, matte: np.ndarray, plate: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The frame's room (a box of it; `matte` the person's there, uint8) with the plate put wherever the frame's person and their rim
    (PLATE_RIM px) were (which holds all the room a turn uncovers), brought to the frame's exposure
    (the mean difference over the room around the person that the clip showed: `seen`)."""
    person = (matte > PLATE_PERSON * 255).astype(np.uint8)
    taken = cv2.dilate(person, _RIM)
    if not cv2.countNonZero(taken):
        return room
    # on every 4th pixel of every 4th row (the ring's mean: within a grey level of all its pixels'), a 16th of the work
    size = (max(person.shape[1] // 4, 1), max(person.shape[0] // 4, 1))
    small = [cv2.resize(image, size, interpolation=cv2.INTER_NEAREST) for image in (person, seen.view(np.uint8), room, plate)]
    person_small, seen_small, room_small, plate_small = small
    ring = seen_small & (cv2.dilate(person_small, _RIM_SMALL) == 0) & cv2.dilate(person_small, _AROUND_SMALL)
    offset = (0.0, 0.0, 0.0)
    if cv2.countNonZero(ring) >= 12:
        offset = tuple(round(a - b) for a, b in zip(cv2.mean(room_small, ring)[:3], cv2.mean(plate_small, ring)[:3]))
    out = room.copy()  # the plate, shifted by the offset (saturating), copied in where taken
    cv2.copyTo(cv2.add(plate, offset + (0.0,)), taken, out)
    return out


def fill_from_room(image: np.ndarray, hole: np.ndarray, room: np.ndarray, mirror: int = 0) -> np.ndarray:
    """`image` (RGB uint8) with the `hole` pixels filled from the `room` pixels (both (H, W) bool):
    each one the Gaussian-weighted mean of the room around it (FILL_WIDTH px wide) where the room
    makes up FILL_SURE of that neighbourhood; further into a large hole, the same on the image
    shrunk 3x, 9x, ... (a pyramid: each wider mean costs less than the one before), read at the
    hole's pixels only (bilinear, as resizing the level back would give them). A hole pixel no
    room reaches keeps its colour. A few milliseconds a head's gap, where inpainting the gap with
    the person masked (OpenCV's Telea) took 90 ms. With `mirror` (px), the hole's pixels that near
    the room take the room mirrored across the hole's edge instead (`mirror_room`)."""
    smooth = _fill_smooth(image, hole, room)
    return mirror_room(image, smooth, hole, room, mirror) if mirror else smooth


def mirror_room(image: np.ndarray, filled: np.ndarray, hole: np.ndarray, room: np.ndarray, reach: int) -> np.ndarray:
    """`filled` with the `hole`'s pixels within `reach` px of the `room` (both (H, W) bool) taken
    from `image`'s room mirrored across the nearest room pixel: the room's own texture (water's
    ripples, leaves, grain) carried on into the gap, where the smooth fill alone left a flat band
    whose edge along the head's old outline read as a second outline when the head turned. The
    nearest room pixels are smoothed along the edge (MIRROR_SMOOTH: picked pixel by pixel they
    jump, which drew streaks across a curved edge), then the room is read there bilinearly. Fully
    mirrored to half the reach, fading to `filled` at the reach; where the mirrored point is not
    room (a narrow strip of room), `filled` stays."""
    not_room = (~room).astype(np.uint8)
    distance, labels = cv2.distanceTransformWithLabels(not_room, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    band = hole & (distance < reach)
    if not band.any():
        return filled
    room_y, room_x = np.nonzero(room)  # label k is the k-th room pixel in row order
    nearest = np.maximum(labels - 1, 0)
    weight = cv2.GaussianBlur(band.astype(np.float32), (0, 0), MIRROR_SMOOTH)
    ys, xs = np.nonzero(band)
    smooth_x, smooth_y = (
        cv2.GaussianBlur(np.where(band, coordinate[nearest], 0).astype(np.float32), (0, 0), MIRROR_SMOOTH)[ys, xs] / weight[ys, xs]
        for coordinate in (room_x, room_y)
    )
    mirror_x, mirror_y = 2 * smooth_x - xs, 2 * smooth_y - ys
    height, width = hole.shape
    at_x, at_y = np.rint(mirror_x).astype(int), np.rint(mirror_y).astype(int)
    usable = (at_y >= 0) & (at_y < height) & (at_x >= 0) & (at_x < width)
    usable[usable] = room[at_y[usable], at_x[usable]]
    ys, xs = ys[usable], xs[usable]
    mirrored = _bilinear(image, mirror_x[usable], mirror_y[usable])
    share = np.clip((reach - distance[ys, xs]) / (reach / 2), 0, 1)[:, None]
    out = filled.copy()
    out[ys, xs] = np.clip(share * mirrored + (1 - share) * filled[ys, xs] + 0.5, 0, 255).astype(np.uint8)
    return out


def _fill_smooth(image: np.ndarray, hole: np.ndarray, room: np.ndarray) -> np.ndarray:
    """`fill_from_room`'s Gaussian fill, level by level."""
    ys, xs = np.nonzero(hole)
    if len(ys) > hole.size // DENSE_HOLE:  # a large hole (a photo's whole person): whole levels resized back are cheaper
        return _fill_dense(image, hole, room)
    out = image.copy()
    left = np.arange(len(ys))  # the hole's pixels not yet filled
    weight = room.astype(np.float32)
    weighted = image.astype(np.float32) * weight[..., None]
    height, width = image.shape[:2]
    while len(left) and min(weight.shape) >= 2:
        mass = cv2.GaussianBlur(weight, (0, 0), FILL_WIDTH)
        total = cv2.GaussianBlur(weighted, (0, 0), FILL_WIDTH)
        if mass.shape == (height, width):
            here, mean = mass[ys[left], xs[left]], total[ys[left], xs[left]] / np.maximum(mass[ys[left], xs[left]], 1e-6)[:, None]
        else:  # a shrunk level, read where each full-size pixel's centre falls on it
            level_mean = total / np.maximum(mass, 1e-6)[..., None]
            at_x = (xs[left] + 0.5) * (mass.shape[1] / width) - 0.5
            at_y = (ys[left] + 0.5) * (mass.shape[0] / height) - 0.5
            here, mean = _bilinear(mass, at_x, at_y), _bilinear(level_mean, at_x, at_y)
        sure = here > FILL_SURE
        filled = left[sure]
        out[ys[filled], xs[filled]] = np.clip(mean[sure] + 0.5, 0, 255).astype(np.uint8)
        left = left[~sure]
        size = (max(weight.shape[1] // 3, 1), max(weight.shape[0] // 3, 1))
        weight, weighted = cv2.resize(weight, size, interpolation=cv2.INTER_AREA), cv2.resize(weighted, size, interpolation=cv2.INTER_AREA)
    return out


def _fill_dense(image: np.ndarray, hole: np.ndarray, room: np.ndarray) -> np.ndarray:
    """`fill_from_room` with each level resized back to full size and read through masks."""
    out = image.copy()
    need = hole.copy()
    weight = room.astype(np.float32)
    weighted = image.astype(np.float32) * weight[..., None]
    height, width = image.shape[:2]
    while need.any() and min(weight.shape) >= 2:
        mass = cv2.GaussianBlur(weight, (0, 0), FILL_WIDTH)
        mean = cv2.GaussianBlur(weighted, (0, 0), FILL_WIDTH) / np.maximum(mass, 1e-6)[..., None]
        if mass.shape != (height, width):  # a shrunk level: back to full size
            mass = cv2.resize(mass, (width, height), interpolation=cv2.INTER_LINEAR)
            mean = cv2.resize(mean, (width, height), interpolation=cv2.INTER_LINEAR)
        sure = need & (mass > FILL_SURE)
        out[sure] = np.clip(mean[sure] + 0.5, 0, 255).astype(np.uint8)
        need &= ~sure
        size = (max(weight.shape[1] // 3, 1), max(weight.shape[0] // 3, 1))
        weight, weighted = cv2.resize(weight, size, interpolation=cv2.INTER_AREA), cv2.resize(weighted, size, interpolation=cv2.INTER_AREA)
    return out


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`image` ((h, w) or (h, w, c)) at the points (x, y), bilinear, edges replicated."""
    height, width = image.shape[:2]
    x = np.clip(x, 0, width - 1)
    y = np.clip(y, 0, height - 1)
    x0, y0 = np.minimum(x.astype(np.int64), width - 2 if width > 1 else 0), np.minimum(y.astype(np.int64), height - 2 if height > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    if image.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _blend_person(out: np.ndarray, moved: np.ndarray, room: np.ndarray, matte: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The moved person over the room, written into `out` at (x0, y0)."""
    out[y0 : y0 + moved.shape[0], x0 : x0 + moved.shape[1]] = cv2.blendLinear(moved, room, matte, 1 - matte)
    return out


def clean_plate(frame: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The frame with the person filled in from the room (their matte grown by GAP_MARGIN), for a
    frame warped again and again (a photo profile's one frame): filled once instead of in every
    output frame."""
    mask = cv2.dilate((person > UNCOVERED).astype(np.uint8), _GROW).astype(bool)
    return fill_from_room(frame, mask, ~mask, MIRROR_REACH)


class PersonMatter:
    """The person matte of frames (MediaPipe selfie segmentation, refined along the frame's edges
    and firmed: `firm_matte`), (H, W) float32 in [0, 1]. Use as a context manager."""

    def __init__(self):
        self._segmenter = None

    def __enter__(self) -> "PersonMatter":
        return self

    def __exit__(self, *exc) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self._segmenter is None:  # its start-up notices (TFLite, absl) do not reach the user
            from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

            from talkface.face.tracker import native_stderr_silenced

            with native_stderr_silenced():
                self._segmenter = SelfieSegmentation(model_selection=0)
                raw = self._segmenter.process(frame).segmentation_mask.astype(np.float32)
        else:
            raw = self._segmenter.process(frame).segmentation_mask.astype(np.float32)
        guide = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
        return firm_matte(cv2.ximgproc.guidedFilter(guide, raw, 4, 1e-3))


class HeadWarper:
    """`warp_head` for a stream of clip frames, with each frame's person matte (read from the
    profile's stored mattes where given, else computed once per clip frame; the last MATTES_KEPT
    are kept). Use as a context manager."""

    def __init__(self, recurring: bool = False, face: np.ndarray | None = None, mattes=None, plate=None):
        """`recurring`: the same few frames are warped again and again (a photo profile): each one's
        room is filled once (`clean_plate`) instead of in every output frame. `face`: the
        person's face mesh (see `warp_head`). `mattes`: the clip frames' stored mattes
        (render/frames.py MatteStore, made at finetune: about a third of a turned frame's time).
        `plate`: the room as the whole clip showed it (render/room.py), where the camera held still."""
        self._face = face
        self._plate = plate
        self._matter = PersonMatter()
        self._stored = mattes
        self._mattes: dict[int, np.ndarray] = {}
        self._plates: dict[int, np.ndarray] | None = {} if recurring else None

    def __enter__(self) -> "HeadWarper":
        return self

    def __exit__(self, *exc) -> None:
        self._matter.__exit__(*exc)

    def __call__(self, frame: np.ndarray, index: int, source_pose: np.ndarray, target_pose: np.ndarray) -> np.ndarray:
        if not needs_warp(source_pose, target_pose):
            return frame
        matte = _kept(self._mattes, index, lambda: self._matte(frame, index))
        room = None if self._plates is None else _kept(self._plates, index, lambda: clean_plate(frame, matte * np.float32(1 / 255)))
        return warp_head(frame, source_pose, target_pose, matte, room, self._face, None if room is not None else self._plate)

    def _matte(self, frame: np.ndarray, index: int) -> np.ndarray:
        """The person matte of clip frame `index`, uint8 (a quarter of the memory, and the warp's own form)."""
        if self._stored is not None and 0 <= index < len(self._stored):
            read = getattr(self._stored, "bytes", self._stored.__getitem__)  # a MatteStore's own bytes, or a list of mattes
            try:
                matte = read(index)
            except CacheError:  # a damaged entry: made again here
                matte = None
            if matte is not None and matte.shape == frame.shape[:2]:
                return _matte_bytes(matte)
        return _matte_bytes(self._matter(frame))


def _matte_bytes(matte: np.ndarray) -> np.ndarray:
    """A person matte as uint8 (0-255): float mattes in [0, 1] are scaled and rounded."""
    if matte.dtype == np.uint8:
        return matte
    return (np.clip(matte, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def firm_matte(matte: np.ndarray) -> np.ndarray:
    """The segmenter's matte with its half-sure parts made sure (a smoothstep from MATTE_FIRM[0]
    to MATTE_FIRM[1]): it reads ears at 0.6-0.8, and a turned head stretches its soft edges,
    so an unfirmed matte showed the room through a moved ear (a ghost ear)."""
    low, high = MATTE_FIRM
    share = np.clip((matte - low) / (high - low), 0, 1)
    return share * share * (3 - 2 * share)


_FIRM = firm_matte(np.arange(256, dtype=np.float32) / 255).astype(np.float32)  # firm_matte of each byte value (cv2.LUT)


def _kept(cache: dict[int, np.ndarray], index: int, make) -> np.ndarray:
    """cache[index], made on first use; the oldest entry goes once MATTES_KEPT are held."""
    if index not in cache:
        if len(cache) >= MATTES_KEPT:
            cache.pop(next(iter(cache)))
        cache[index] = make()
    return cache[index]


def head_moves(points: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray, face: np.ndarray | None = None) -> np.ndarray:
    """(N, 2) image points at the target pose -> (N, 2) where to read them in the source frame,
    as offsets (backward moves). With `face` ((V, 3) model units), the moves agree with the face
    mesh's own on and near it (see the module's notes)."""
    moves = _ellipsoid_moves(points, source_pose, target_pose)
    if face is None:
        return moves
    drawn, amplitude = _face_correction(source_pose, target_pose, face)
    return moves + _spread(points, drawn, amplitude, FACE_REACH * target_pose[5])


def _spread(points: np.ndarray, drawn: np.ndarray, amplitude: np.ndarray, reach: float) -> np.ndarray:
    """The face correction at `points` (N, 2): the Gaussian-weighted mean (`reach` wide) of the
    mesh points' amplitudes, faded off the face (where the summed weight falls below FACE_FADE)."""
    return _spread_weights(points, drawn, reach) @ amplitude.astype(np.float32)


def _spread_weights(points: np.ndarray, drawn: np.ndarray, reach: float) -> np.ndarray:
    """(N, V') the weights `_spread` gives each mesh point's amplitude at each of `points`."""
    centre = drawn.mean(0)
    points, drawn = (points - centre).astype(np.float32), (drawn - centre).astype(np.float32)
    influence = points @ drawn.T  # becomes each point's Gaussian weight of each mesh point, in place
    influence *= -2
    influence += (points * points).sum(1)[:, None] + (drawn * drawn).sum(1)[None]  # squared distances
    influence *= np.float32(-0.5 / (reach * reach))
    np.exp(influence, out=influence)
    influence /= (influence.sum(1) + np.float32(FACE_FADE))[:, None]
    return influence


def _face_correction(
    source_pose: np.ndarray, target_pose: np.ndarray, face: np.ndarray, base=None
) -> tuple[np.ndarray, np.ndarray]:
    """Mesh points where the face is drawn (V', 2), and their amplitudes (V', 2) for `_spread`.

    At each point the base moves miss the mesh's own move by some error. A weighted mean of
    the errors alone would reach only part of each (the mean smooths, and the fade takes a
    share): FACE_PASSES passes of successive correction (Barnes's scheme) spread what the passes
    before left, so the sum meets the errors on the face to within about a tenth. Every pass is
    a weighted mean of what is left, so the correction stays about the size of the errors it
    spreads (at most 1.1x at these settings; an exact radial-basis fit reached 2x and bulged
    the cheek at 20 degrees). `base`: the moves at given image
    points ((N, 2) -> (N, 2)); the ellipsoid's by default."""
    surface = face[:: max(1, len(face) // FACE_POINTS)].astype(np.float64)
    drawn = _project(surface, target_pose)
    moved = base(drawn) if base is not None else _ellipsoid_moves(drawn, source_pose, target_pose)
    left = (_project(surface, source_pose) - drawn) - moved
    amplitude = np.zeros_like(left)
    weights = _spread_weights(drawn, drawn, FACE_REACH * target_pose[5])
    for _ in range(FACE_PASSES):  # each pass's mean has the same weights, so the passes add up in their amplitudes
        amplitude += left
        left = left - weights @ left.astype(np.float32)
    return drawn, amplitude


def grid_moves(
    gx: np.ndarray, gy: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray, face: np.ndarray | None, soften: float = 0.0
) -> np.ndarray:
    """`head_moves` at every point of a regular grid (`gx`, `gy`: evenly spaced): (len(gy), len(gx), 2).

    `soften`: the ellipsoid's moves are blurred by this many grid steps first (see SOFTEN); the
    face correction then makes up for what the blur changed on the face, so the face still
    moves as the mesh does."""
    grid = np.stack(np.meshgrid(gx, gy), -1)
    moves = _ellipsoid_moves(grid.reshape(-1, 2), source_pose, target_pose).reshape(grid.shape)
    if soften > 0:
        moves = cv2.GaussianBlur(moves, (0, 0), soften, borderType=cv2.BORDER_REPLICATE)
    if face is None:
        return moves

    def sampled(points: np.ndarray) -> np.ndarray:  # the (blurred) grid moves, bilinear between grid points
        cells = ((points - [gx[0], gy[0]]) / [gx[1] - gx[0], gy[1] - gy[0]]).astype(np.float32)[None]
        return np.stack([cv2.remap(moves[..., k], cells[..., 0], cells[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0] for k in (0, 1)], -1)

    drawn, amplitude = _face_correction(source_pose, target_pose, face, sampled)
    reach = FACE_REACH * target_pose[5]
    # summed only where the weights are not yet nothing: the face's box and 3 reaches round it (1 % left)
    low = np.searchsorted(gx, drawn.min(0)[0] - 3 * reach), np.searchsorted(gy, drawn.min(0)[1] - 3 * reach)
    high = np.searchsorted(gx, drawn.max(0)[0] + 3 * reach), np.searchsorted(gy, drawn.max(0)[1] + 3 * reach)
    moves = moves.copy()
    moves[low[1] : high[1], low[0] : high[0]] += _spread_on_grid(gx[low[0] : high[0]], gy[low[1] : high[1]], drawn, amplitude, reach)
    return moves


def _spread_on_grid(gx: np.ndarray, gy: np.ndarray, drawn: np.ndarray, amplitude: np.ndarray, reach: float) -> np.ndarray:
    """`_spread` at every point of the grid (`gx`, `gy`): (len(gy), len(gx), 2). A Gaussian weight
    is the product of one along x and one along y, so the sums over the mesh points are two small
    matrix products (the same figures, for a fraction of the work)."""
    along_x = np.exp(-0.5 * ((gx[None] - drawn[:, :1]) / reach) ** 2)  # (V', nx)
    along_y = np.exp(-0.5 * ((gy[None] - drawn[:, 1:]) / reach) ** 2)  # (V', ny)
    total = along_y.T @ along_x + FACE_FADE
    return np.stack([(along_y.T * amplitude[:, k]) @ along_x for k in (0, 1)], -1) / total[..., None]


def _ellipsoid_moves(points: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray) -> np.ndarray:
    """`head_moves` of the ellipsoid alone (no face correction). Each image point q at the target
    pose is the model-space ray p(d) = a + d * b, with a = R_t^T ((q - shift) / scale, 0) and b =
    R_t^T e_z (d: depth in model units, toward the back), which meets the ellipsoid where
    qa d^2 + qb d + qc = 0. Everything here is linear in q but qc, so it is worked out as a few
    (N, 2) and (N, 3) products."""
    rotation_t = euler_to_rotation(target_pose[None, :3])[0]
    rotation_s = euler_to_rotation(source_pose[None, :3])[0]
    scale, shift = target_pose[5], target_pose[3:5]
    b = rotation_t[2]  # R^T e_z: the rays' direction in model space
    direction = b / HEAD_RADII
    qa = float(direction @ direction)
    to_model = rotation_t[:2] / scale  # (2, 3): a = (q - shift) @ to_model
    to_offset = to_model / HEAD_RADII  # the ray's start relative to the ellipsoid, in its radii
    offset_base = -HEAD_CENTRE / HEAD_RADII - shift @ to_offset

    def quadratic(image_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        offset = image_points @ to_offset + offset_base
        return 2 * (offset @ direction), np.einsum("ij,ij->i", offset, offset) - 1

    qb, qc = quadratic(points)
    # how far out each point is, in outline radii along its ray from the head's centre (<= 1: on the head)
    spread = np.sqrt(np.maximum(1 - (qb * qb - 4 * qa * qc) / (4 * qa), 1e-12))
    outside = spread > 1
    centre = _project(HEAD_CENTRE[None], target_pose)[0]
    on_head = points.copy()
    on_head[outside] = centre + (points[outside] - centre) / spread[outside, None]  # the outline point on the same ray
    qb, qc = quadratic(on_head)
    depth = (-qb - np.sqrt(np.maximum(qb * qb - 4 * qa * qc, 0))) / (2 * qa)  # the front surface
    # the surface point a + depth * b seen at the source pose: scale_s * (R_s p)[:2] + shift_s
    to_source = source_pose[5] * rotation_s[:2].T  # (3, 2)
    moves = (on_head - shift) @ (to_model @ to_source) + depth[:, None] * (b @ to_source) + source_pose[3:5] - on_head
    fade = np.clip((RING - spread) / (RING - 1), 0, 1)
    return moves * (fade * fade * (3 - 2 * fade))[:, None]  # smoothstep: no crease where the warp ends


def _project(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(N, 3) model points -> (N, 2) pixels at `pose`."""
    return apply_pose(points[None], pose[None])[0, :, :2]
