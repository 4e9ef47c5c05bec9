"""The output stage, above render and refine: motion -> background matching, face compositing, refining, encoding."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from talkface import progress
from talkface.config import DEFAULT_CRF
from talkface.errors import CacheError, InputError
from talkface.face.model import place_vertices
from talkface.media import Audio, read_frames, write_video
from talkface.motion import Motion
from talkface.pipeline import pipeline_threads, prefetched
from talkface.profile import Profile
from talkface.refine.model import BATCH as REFINE_BATCH
from talkface.refine.model import Refiner
from talkface.render.backdrop import BackgroundReplacer
from talkface.render.background import follow_indices, follow_turn, seat_head
from talkface.render.composite import INNER_LIPS, FaceCompositor
from talkface.render.eyes import EyeMemory
from talkface.render.mouth_patches import MouthPatches
from talkface.render.frames import FrameStore, MatteStore
from talkface.render.headwarp import HeadWarper, needs_warp
from talkface.render.mouth import GenericMouth, PhotoMouth
from talkface.render.room import load_room_plate
from talkface.render.turn_gain import load_turn_gain

SAME_FACE = object()  # marks a background whose face is where the motion puts it (`onto`)


def render_frames(
    profile: Profile, motion: Motion, device: str = "cpu", refine: bool = True, onto: Iterable[np.ndarray] | None = None,
    view: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Full frames at the clip's resolution, one per motion frame (RGB uint8).

    The backgrounds are the profile's clip frames chosen by keyframe matching, with the head
    seated on them; or, with `onto`, the given frames (a video the motion was tracked from)
    with the head exactly at the motion's pose, which redraws the face in place.
    With `refine` and a profile that has a refiner, the coarse frames go through it in batches.

    `view`: (T, 3) radians (pitch, yaw, roll) that controls added to the motion's head angles
    (`--yaw`, `--frontal`, ...). The backgrounds are then matched to the motion without them (the
    clip plays as it naturally would) and each one's whole head (hair, ears, outline) is turned
    by them (render/headwarp.py), since the clip has no frames at those angles. A photo profile
    has one frame: its head is turned to every frame's angles.
    """
    if motion.expression.shape[1] != profile.face.n_expression:
        raise InputError(
            f"the motion has {motion.expression.shape[1]} expression coefficients but the profile's face model has "
            f"{profile.face.n_expression}; make the motion with this profile (speak, or track --person)"
        )
    if onto is None:
        poses, scenes, warper = background_scenes(profile, motion, view)
    else:  # the motion was tracked from these frames: the face is where they show it
        poses, warper = motion.pose.astype(np.float64), contextlib.nullcontext()
        scenes = ((frame, SAME_FACE, None) for frame in onto)
    compositor = FaceCompositor(profile.face, device)
    if profile.is_photo:  # the photo's own skin over the whole face, and its own teeth, carried by the lips
        compositor.keep_whole_face()
        photo = profile.read_part(lambda: FrameStore(profile.folder / "frames.npz")[0])
        placed = place_vertices(profile.face, profile.clip_fit.expression[0], profile.clip_fit.pose[0])
        landmarks = placed[profile.face.landmark_index]
        compositor.teeth = PhotoMouth(photo, landmarks, INNER_LIPS)
        if not compositor.teeth.usable:  # a closed mouth in the photo: teeth from the corpus, in its light
            compositor.teeth = GenericMouth.load().for_face(photo, landmarks, INNER_LIPS)
    refiner = profile.read_part(lambda: Refiner.load(profile.folder, device)) if refine and profile.has_refiner else None
    # the person's own eyes; their own lips and teeth too where no refiner draws the mouth (render/mouth_patches.py)
    regions = [region.from_profile(profile.folder) for region in ((EyeMemory,) if refiner else (EyeMemory, MouthPatches))]
    regions = [region for region in regions if region is not None]
    picks, shuts = zip(*[region.choose(profile.face, motion.expression, motion.pose) for region in regions]) if regions else ((), ())  # shuts: eyes shut further than their patch

    def coarse() -> Iterator[tuple]:
        """(frame, prepared) per motion frame: a coarse frame and, with a refiner, its crops and
        memory read (made here, off the refining thread); prepared None: a frame to pass on as it is."""
        with warper, contextlib.closing(scenes):  # closed in the thread that made them, when the frames end or stop
            yield from _coarse_frames()

    def _coarse_frames() -> Iterator[tuple]:
        previous = None  # the coarse frame before, which the refiner sees too (none after a gap)
        for index, (background, own, own_image) in zip(range(motion.n_frames), scenes):
            if not np.isfinite(poses[index]).all():  # a frame of `onto` where no face was tracked: left as it is
                previous = None
                yield background, None
                continue
            vertices = place_vertices(profile.face, motion.expression[index], poses[index])
            frame, coverage, kept = compositor.composite_keeping(background, vertices, vertices if own is SAME_FACE else own, own_image)
            for region, chosen, shut in zip(regions, picks, shuts):  # the person's own eyes, lids and brows, lips and teeth
                frame = region.paste(frame, vertices[profile.face.landmark_index], chosen[index], coverage, float(shut[index]))
            before = frame if previous is None else previous
            previous = frame
            yield frame, (refiner.prepare(profile.face, frame, before, coverage, vertices, motion.expression[index], kept) if refiner else True)

    if refiner is None:
        for frame, _ in coarse():
            yield frame
        return
    stream = prefetched(coarse(), depth=2 * REFINE_BATCH)  # frames are composited in another thread while these are refined
    try:
        for frame, _ in refiner.refine_stream((frame, ready, None) for frame, ready in stream):
            yield frame
    finally:
        stream.close()


def background_scenes(profile: Profile, motion: Motion, view: np.ndarray | None = None) -> tuple[np.ndarray, Iterator[tuple], contextlib.AbstractContextManager]:
    """The backgrounds `render_frames` draws a motion's face onto: the head's pose on each
    (T, 6), an iterator of (background, own face, own image) per frame (the clip frame, its head
    turned where the motion asks more than it shows, with its fitted face and the frame as it
    was), and a context to enter around iterating it. `view` as in `render_frames`."""
    clip_pose = profile.clip_fit.pose.astype(np.float64)
    natural = motion.pose.astype(np.float64).copy()
    if view is not None:
        natural[:, :3] -= view
    indices = follow_indices(natural, clip_pose, profile.clip_fit.valid)
    poses = seat_head(motion.pose.astype(np.float64), clip_pose, indices)
    store = profile.read_part(lambda: FrameStore(profile.folder / "frames.npz"))
    turned = clip_pose[indices].copy()
    if profile.is_photo:  # a photo's one head turned by every turn of the motion
        turned[:, :3] = motion.pose[:, :3]
    else:  # what the chosen frames' heads lack of the motion's angles (capped), and the view asked for
        lacking = natural[:, :3] - clip_pose[indices, :3]
        turned[:, :3] += follow_turn(lacking, load_turn_gain(profile.folder).of(lacking)) + (0.0 if view is None else view)
    if not profile.is_photo and not any(needs_warp(a, b) for a, b in zip(clip_pose[indices], turned)):
        # each background frame with where its own face is: its skin is kept (render/composite.py)
        scenes, warper = ((store[int(i)], own_face(profile, int(i)), None) for i in indices), contextlib.nullcontext()
    else:  # each clip frame's whole head (hair, ears, outline) turned to the drawn angles
        plate = None if profile.is_photo else load_room_plate(profile.folder, profile.size)
        warper = HeadWarper(recurring=profile.is_photo, face=profile.face.mean_shape, mattes=stored_mattes(profile), plate=plate)
        # turned in a thread of their own, ahead of the compositing (a turned 900x900 frame
        # costs about 25 ms: in the compositing thread it held the refiner waiting)
        scenes = prefetched(_turned_scenes(profile, store, warper, indices, clip_pose, turned), depth=TURNED_AHEAD)
        warper = contextlib.nullcontext()  # made, used and closed in that thread (_turned_scenes)
    return poses, scenes, warper


TURNED_AHEAD = 4  # turned background frames made ahead of the compositing


def stored_mattes(profile: Profile) -> MatteStore | None:
    """The clip frames' person mattes finetune stored, or None (a profile made before they were,
    or a damaged file: the head warp then makes each one as it needs it)."""
    path = profile.folder / "mattes.npz"
    if not path.exists():
        return None
    try:
        return MatteStore(path)
    except CacheError as error:
        progress.log(f"note: {error}; the person mattes are made while rendering (slower) until the profile is finetuned again")
        return None


def own_face(profile: Profile, index: int) -> np.ndarray:
    """Where clip frame `index` shows the person's face: its fitted mesh (V, 3) in pixels."""
    return place_vertices(profile.face, profile.clip_fit.expression[index], profile.clip_fit.pose[index].astype(np.float64))


def _turned_scenes(profile: Profile, store: FrameStore, warper: HeadWarper, indices, clip_pose: np.ndarray, turned: np.ndarray) -> Iterator[tuple]:
    """(background, own face, own image) per output frame: the clip frame with its head turned to
    `turned`, and the frame as it was with its fitted face, whose skin the compositor moves
    through the mesh to the new angle (sharper than the warp, and exact where the warp is
    approximate: render/headwarp.py)."""
    with warper:
        for t, i in enumerate(indices):
            frame = store[int(i)]
            yield warper(frame, int(i), clip_pose[i], turned[t]), own_face(profile, int(i)), frame


def render_video(
    profile: Profile,
    motion: Motion,
    out: str | Path,
    audio: Audio | None = None,
    device: str = "cpu",
    refine: bool = True,
    background: str | None = None,
    onto: str | Path | None = None,
    view: np.ndarray | None = None,
    crf: int = DEFAULT_CRF,
) -> Path:
    """Render a motion of this profile's person to an mp4 (with `audio` muxed if given) at x264 quality `crf`.

    `background`: an image, a video or a colour to put behind the person instead of their room.
    `onto`: redraw the face in place on this video's frames (see `render_frames`).
    `view`: the head angles controls added to the motion (see `render_frames`).
    """
    replacer = BackgroundReplacer(background, profile.size) if background else contextlib.nullcontext()
    with replacer, pipeline_threads(), progress.bar("rendering" + (" and refining" if refine and profile.has_refiner else ""), motion.n_frames) as advance:

        def frames():
            for frame in render_frames(profile, motion, device, refine, read_frames(onto) if onto else None, view):
                yield replacer(frame) if background else frame
                advance(1)

        return write_video(out, frames(), motion.fps, audio, crf)
