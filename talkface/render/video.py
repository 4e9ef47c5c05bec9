"""Motion -> full-frame video: background matching, face compositing, encoding."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np

from talkface import progress
from talkface.errors import InputError
from talkface.face.model import place_vertices
from talkface.media import Audio, write_video
from talkface.motion import Motion
from talkface.profile import Profile
from talkface.refine.model import BATCH as REFINE_BATCH
from talkface.refine.model import Refiner
from talkface.render.backdrop import BackgroundReplacer
from talkface.render.background import background_indices, seat_head
from talkface.render.composite import FaceCompositor
from talkface.render.frames import FrameStore


def render_frames(profile: Profile, motion: Motion, device: str = "cpu", refine: bool = True) -> Iterator[np.ndarray]:
    """Full frames at the clip's resolution, one per motion frame (RGB uint8).

    With `refine` and a profile that has a refiner, the coarse frames go through it in batches.
    """
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
    refiner = Refiner.load(profile.folder, device) if refine and profile.has_refiner else None
    batch: list[tuple] = []
    previous = None
    for index in range(motion.n_frames):
        vertices = place_vertices(profile.face, motion.expression[index], poses[index])
        frame, coverage = compositor.composite(store[int(indices[index])], vertices)
        if refiner is None:
            yield frame
            continue
        batch.append((frame, frame if previous is None else previous, coverage, vertices))
        previous = frame
        if len(batch) == REFINE_BATCH or index == motion.n_frames - 1:
            frames, before, coverages, placed = (list(column) for column in zip(*batch))
            expressions = motion.expression[index + 1 - len(batch) : index + 1]
            yield from refiner.refine(profile.face, frames, before, coverages, placed, expressions)
            batch = []


def render_video(
    profile: Profile,
    motion: Motion,
    out: str | Path,
    audio: Audio | None = None,
    device: str = "cpu",
    refine: bool = True,
    background: str | None = None,
) -> Path:
    """Render a motion of this profile's person to an mp4 (with `audio` muxed if given).

    `background`: an image, a video or a colour to put behind the person instead of their room.
    """
    replacer = BackgroundReplacer(background, profile.size) if background else contextlib.nullcontext()
    with replacer, progress.bar("rendering" + (" and refining" if refine and profile.has_refiner else ""), motion.n_frames) as advance:

        def frames():
            for frame in render_frames(profile, motion, device, refine):
                yield replacer(frame) if background else frame
                advance(1)

        return write_video(out, frames(), motion.fps, audio)
