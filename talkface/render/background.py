"""Keyframe background matching (Yi et al. 2020, sec. 3.4).

In each short window the frames where the head reaches its leftmost and rightmost yaw are
keyframes. Each keyframe is matched to the clip frame whose head pose fits it best; between
keyframes the clip is played (forwards or backwards) from one matched frame to the next, so
the background, hair and torso move naturally and never jump. The generated head is then
placed where the matched frame's head is, so it always sits on that frame's neck.
"""

from __future__ import annotations

import numpy as np

KEYFRAME_WINDOW = 25  # frames: one pair of yaw extremes per second
ANGLE_WEIGHT = 1.0  # per degree of pitch/yaw/roll difference
POSITION_WEIGHT = 0.2  # per pixel of head position difference, at a 256-px-wide face
JUMP_WEIGHT = 0.05  # per frame the match lies away from simply playing on: 100 frames cost as much as 5 degrees
MAX_PLAYBACK_SPEED = 1.5  # the background never plays faster than this (forwards or backwards)
FACE_WIDTH = 256.0


def select_keyframes(yaw: np.ndarray, window: int = KEYFRAME_WINDOW) -> np.ndarray:
    """Sorted frame indices: the first and last frame, and each window's yaw minimum and maximum."""
    keys = {0, len(yaw) - 1}
    for start in range(0, len(yaw), window):
        part = yaw[start : start + window]
        keys.update((start + int(np.argmin(part)), start + int(np.argmax(part))))
    return np.array(sorted(keys))


def pose_distance(poses: np.ndarray, clip_poses: np.ndarray) -> np.ndarray:
    """(K, 6) x (N, 6) -> (K, N) cost of showing pose k on clip frame n's background."""
    angles = np.degrees(poses[:, None, :3] - clip_poses[None, :, :3])
    unit = FACE_WIDTH / np.median(clip_poses[:, 5])
    shift = (poses[:, None, 3:5] - clip_poses[None, :, 3:5]) * unit
    return ANGLE_WEIGHT * np.abs(angles).sum(-1) + POSITION_WEIGHT * np.abs(shift).sum(-1)


def background_indices(poses: np.ndarray, clip_poses: np.ndarray, clip_valid: np.ndarray) -> np.ndarray:
    """For every output frame, the clip frame that serves as its background.

    Args:
        poses: (T, 6) output head poses.
        clip_poses: (N, 6) the clip's head poses.
        clip_valid: (N,) bool, clip frames with a fitted face (only those can be used).

    Returns:
        (T,) int clip frame indices.
    """
    keys = select_keyframes(poses[:, 1])
    cost = pose_distance(poses[keys], clip_poses)
    cost[:, ~clip_valid] = np.inf
    # match keyframes in order, preferring to keep playing the clip over jumping in it, so the
    # background between two keyframes never races through a long stretch of the clip
    matched = np.empty(len(keys), int)
    frames = np.arange(len(clip_poses))
    for order, key in enumerate(keys):
        if order == 0:
            matched[order] = int(np.argmin(cost[order]))
            continue
        gap = key - keys[order - 1]
        expected = min(matched[order - 1] + gap, len(clip_poses) - 1)
        reachable = np.abs(frames - matched[order - 1]) <= MAX_PLAYBACK_SPEED * gap
        candidates = np.where(reachable, cost[order] + JUMP_WEIGHT * np.abs(frames - expected), np.inf)
        if np.isfinite(candidates).any():
            matched[order] = int(np.argmin(candidates))
        else:  # no frame with a face within reach: allow the jump
            matched[order] = int(np.argmin(cost[order] + JUMP_WEIGHT * np.abs(frames - expected)))
    indices = np.interp(np.arange(len(poses)), keys, matched)
    indices = np.round(indices).astype(int)
    # a frame reached by interpolation may lack a face: use the nearest one that has one
    usable = np.flatnonzero(clip_valid)
    nearest = usable[np.clip(np.searchsorted(usable, indices), 0, len(usable) - 1)]
    return np.where(clip_valid[indices], indices, nearest)


def seat_head(poses: np.ndarray, clip_poses: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Keep the generated rotation but put the head where the background frame's head is."""
    seated = poses.copy()
    seated[:, 3:] = clip_poses[indices, 3:]
    return seated


# -- following the motion ------------------------------------------------------------------------
# Costs in degrees of head-angle mismatch per output frame (|pitch| + |yaw| + |roll| between the drawn
# face and the background frame's head); playing the clip on costs nothing.
TURN_FREE_DEGREES = 1.5  # per angle: a lack this small costs little (it is left as it is: follow_turn)
TURN_WEIGHT = 0.2  # what each degree of it still costs
PAUSE_COST = 1.0  # the background holds a frame for one more output frame
REVERSE_COST = 2.0  # it plays one frame backwards
CUT_COST = 150.0  # it jumps to another part of the clip (a cut: seen, so rare)
FOLLOW_TURN_DEGREES = 10.0  # the most a background's whole head is turned towards the drawn angles (headwarp.py)
TURN_FROM_DEGREES = 1.0  # a background head lacking less than this of the drawn angles is not turned
TURN_FULL_DEGREES = 1.5  # one lacking this or more is turned all the way (up to FOLLOW_TURN_DEGREES)
# pitch, yaw, roll: the head warp shows about 0.86 of a turn out of the image asked of it (its
# ellipsoid's outline moves less than a real head's: benchmarks/freeview.md), so those turns are
# asked 1/0.86 of what the frame lacks; roll, a turn within the image, comes through whole.
# The default: finetune measures each person's own (render/turn_gain.py).
TURN_GAIN = np.array([1.15, 1.15, 1.0])


def follow_indices(poses: np.ndarray, clip_poses: np.ndarray, clip_valid: np.ndarray) -> np.ndarray:
    """For every output frame, the clip frame that serves as its background, chosen so its head
    follows the drawn head's angles frame by frame: the path over the clip's frames (one step a
    frame: play on, hold, play back, or cut to any frame) with the least angle mismatch plus
    PAUSE_COST, REVERSE_COST and CUT_COST for each such step (Viterbi; memory T x N bytes).

    Args:
        poses: (T, 6) output head poses (the angles are followed).
        clip_poses: (N, 6) the clip's head poses.
        clip_valid: (N,) bool, clip frames with a fitted face (only those can be used).

    Returns:
        (T,) int clip frame indices.
    """
    n_frames, n_clip = len(poses), len(clip_poses)
    clip_angles = np.degrees(clip_poses[:, :3].astype(np.float64))
    angles = np.degrees(poses[:, :3].astype(np.float64))
    unusable = np.where(clip_valid, 0.0, np.inf)

    def mismatch(t: int) -> np.ndarray:
        lack = np.abs(clip_angles - angles[t])
        return (np.maximum(lack - TURN_FREE_DEGREES, 0.0) + TURN_WEIGHT * lack).sum(1) + unusable

    cost = mismatch(0)
    steps = np.empty((n_frames, n_clip), np.int8)  # 0: played on from n-1, 1: held n, 2: played back from n+1, 3: cut
    cut_from = np.zeros(n_frames, np.int64)
    options = np.empty((4, n_clip))
    for t in range(1, n_frames):
        best = int(np.argmin(cost))
        options[0, 0], options[0, 1:] = np.inf, cost[:-1]
        options[1] = cost + PAUSE_COST
        options[2, :-1], options[2, -1] = cost[1:] + REVERSE_COST, np.inf
        options[3] = cost[best] + CUT_COST
        steps[t] = np.argmin(options, 0)
        cut_from[t] = best
        cost = options[steps[t], np.arange(n_clip)] + mismatch(t)
    path = np.empty(n_frames, np.int64)
    path[-1] = int(np.argmin(cost))
    for t in range(n_frames - 1, 0, -1):
        step, here = steps[t, path[t]], path[t]
        path[t - 1] = here - 1 if step == 0 else here if step == 1 else here + 1 if step == 2 else cut_from[t]
    return path


def follow_turn(residual: np.ndarray, gain: np.ndarray = TURN_GAIN) -> np.ndarray:
    """(T, 3) radians a background frame's head is turned (render/headwarp.py) towards the drawn
    face: the angles it lacks (`residual`) times `gain` ((3,) or (T, 3): what the warped picture
    shows of a turn is less than asked, render/turn_gain.py), each at most FOLLOW_TURN_DEGREES. A frame that lacks
    under TURN_FROM_DEGREES (on every axis) is left as it is (a warp costs 20-50 ms a frame), one
    that lacks TURN_FULL_DEGREES or more is turned all the way, and the turn grows smoothly
    between, so the head's outline never jumps as frames start or stop being turned."""
    lack = np.degrees(np.abs(residual)).max(axis=1, keepdims=True)
    share = np.clip((lack - TURN_FROM_DEGREES) / (TURN_FULL_DEGREES - TURN_FROM_DEGREES), 0.0, 1.0)
    limit = np.radians(FOLLOW_TURN_DEGREES)
    return np.clip(residual * share * gain, -limit, limit)


def pose_range_note(poses: np.ndarray, clip_poses: np.ndarray, clip_valid: np.ndarray) -> str | None:
    """One line when the motion's pitch or yaw (`poses`, (T, >=3) radians) goes further than the
    clip's frames show plus the most the background's head is turned (FOLLOW_TURN_DEGREES): there
    the head in the video stops short of the motion. None when it stays within."""
    shown = np.degrees(clip_poses[clip_valid, :3].astype(np.float64))
    asked = np.degrees(poses[:, :3].astype(np.float64))
    if not len(shown) or not np.isfinite(asked).all():
        return None
    low, high = shown.min(0) - FOLLOW_TURN_DEGREES, shown.max(0) + FOLLOW_TURN_DEGREES
    beyond = (asked < low) | (asked > high)
    words = []
    for axis, name in ((1, "yaw"), (0, "pitch")):
        if beyond[:, axis].any():
            words.append(
                f"{name} to {asked[:, axis].min():.0f}..{asked[:, axis].max():.0f} degrees in {beyond[:, axis].mean():.0%} of the frames, "
                f"where the clip shows {shown[:, axis].min():.0f}..{shown[:, axis].max():.0f}"
            )
    if not words:
        return None
    return (
        f"the motion turns the head {' and '.join(words)}; the background's head follows at most {FOLLOW_TURN_DEGREES:g} degrees "
        "beyond the clip, so there it turns less than the face: --pose-scale 0.7 keeps the motion within, a clip with more head motion shows more"
    )
