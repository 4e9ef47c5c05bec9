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
