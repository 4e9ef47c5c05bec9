"""Motion -> full-frame video: background matching, face compositing, encoding."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from talkface import progress
from talkface.errors import InputError
from talkface.face.model import place_vertices
from talkface.media import Audio, write_video
from talkface.motion import Motion
from talkface.profile import Profile
from talkface.render.background import background_indices, seat_head
from talkface.render.composite import FaceCompositor
from talkface.render.frames import FrameStore


def render_frames(profile: Profile, motion: Motion, device: str = "cpu") -> Iterator[np.ndarray]:
    """Full frames at the clip's resolution, one per motion frame (RGB uint8)."""
    if motion.expression.shape[1] != profile.face.n_expression:
        raise InputError(
            f"the motion has {motion.expression.shape[1]} expression coefficients but the profile's face model has "
            f"{profile.face.n_expression}; make the motion with this profile (speak, or track --person)"
        )
    clip_pose = profile.clip_fit.pose.astype(np.float64)
    indices = background_indices(motion.pose.astype(np.float64), clip_pose, profile.clip_fit.valid)
    poses = seat_head(motion.pose.astype(np.float64), clip_pose, indices)
    store = FrameStore(profile.folder / "frames.npz")
    compositor = FaceCompositor(profile.face, device)
    for index in range(motion.n_frames):
        vertices = place_vertices(profile.face, motion.expression[index], poses[index])
        frame, _ = compositor.composite(store[int(indices[index])], vertices)
        yield frame


def render_video(profile: Profile, motion: Motion, out: str | Path, audio: Audio | None = None, device: str = "cpu") -> Path:
    """Render a motion of this profile's person to an mp4 (with `audio` muxed if given)."""
    with progress.bar("rendering", motion.n_frames) as advance:

        def frames():
            for frame in render_frames(profile, motion, device):
                yield frame
                advance(1)

        return write_video(out, frames(), motion.fps, audio)
