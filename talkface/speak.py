"""`talkface speak`: a profile + any speech -> a video of that person saying it."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from talkface import progress
from talkface.audio import check_speech, extract, n_video_frames
from talkface.config import SpeakConfig
from talkface.controls import Controls, apply_controls, view_change
from talkface.device import resolve_device
from talkface.face.model import place_vertices
from talkface.media import check_destination, load_audio, write_video
from talkface.motion import Motion, save_motion
from talkface.motion.model import generate_motion
from talkface.profile import Profile, load_profile
from talkface.render.background import pose_range_note
from talkface.render.preview import draw_mesh, triangle_colours
from talkface.output import render_video



@dataclass(frozen=True)
class SpeakResult:
    """What `speak` made."""

    video: Path
    motion: Motion
    profile: Path
    n_frames: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.n_frames / self.seconds if self.seconds > 0 else 0.0


def speak(
    audio: str | Path,
    out: str | Path,
    person: str | Path | Profile | None = None,
    config: SpeakConfig = SpeakConfig(),
    device: str = "auto",
    motion_path: str | Path | None = None,
    controls: Controls = Controls(),
    background: str | None = None,
) -> SpeakResult:
    """Make a video of the profile's person saying `audio`.

    The video has the clip's resolution: the person's textured face at the predicted pose
    and expression, composited into background frames of their clip chosen by keyframe
    matching, then made photoreal by the profile's GAN refiner (`config.refine`; the coarse
    render without it). `config.preview`: the shaded 3D face on a plain background instead.

    Args:
        audio: any speech recording (wav, mp3, flac, m4a, or a video's sound), 0.5 s to hours.
        out: the .mp4 to write.
        person: profile folder or loaded Profile (default: the most recently finetuned).
        config: pose mode, seed, blink rate, refiner on/off, preview, output quality (crf).
        device: 'auto', 'cpu' or 'cuda'.
        motion_path: also write the motion file here.
        controls: head pose offsets/scale/frontalisation and mouth amplitude (see talkface.controls).
        background: an image, a video or a colour to put behind the person.

    Raises:
        InputError: unreadable, silent or too short audio; bad settings.
    """
    started = time.perf_counter()
    # 1. check inputs
    config.check()
    if config.pose == "still":
        controls = replace(controls, pose_scale=0.0)
    controls.check()
    check_destination(out, (audio, motion_path))
    profile = person if isinstance(person, Profile) else load_profile(person)
    if person is None:
        progress.log(f"using the most recently finetuned profile: {profile.folder}")
    speech = load_audio(audio)
    check_speech(speech, str(audio))
    # 2. audio features, one row per output frame
    n_frames = n_video_frames(speech, profile.fps)
    features = extract(speech, profile.feature_set, n_frames)
    # 3. expression, head pose and blinks
    clip_pose = profile.clip_fit.pose if config.pose in ("clip", "still") else None
    motion = generate_motion(
        profile.motion, profile.face, features, profile.fps, config.seed, clip_pose, config.blink_rate
    )
    del features  # 0.2 GB for an hour of speech: not kept while the frames are made
    natural = motion
    motion, notes = apply_controls(motion, profile, controls)
    view = view_change(natural, motion)  # the head angles the controls added (the background's head is turned by them)
    del natural
    if config.pose == "generated" and not profile.is_photo and view is None:  # what the clip's frames can show
        notes = [*notes, pose_range_note(motion.pose, profile.clip_fit.pose, profile.clip_fit.valid)]
    for note in notes:
        if note:
            progress.log(f"note: {note}")
    if motion_path:
        save_motion(motion_path, motion)
    # 4. render (and refine) and encode, one frame at a time
    if config.preview:
        write_video(out, _preview_frames(profile, motion), profile.fps, speech, config.crf)
    else:
        if config.refine and not profile.has_refiner and not profile.is_photo:
            progress.log("this profile has no refiner (finetune it again with the refiner on); writing the coarse render")
        render_video(profile, motion, out, speech, resolve_device(device), config.refine, background, view=view, crf=config.crf)
    return SpeakResult(Path(out), motion, profile.folder, n_frames, time.perf_counter() - started)


def _preview_frames(profile: Profile, motion: Motion):
    """The shaded 3D face at each frame's pose on a plain background."""
    colours = triangle_colours(profile.face)
    with progress.bar("rendering preview", motion.n_frames) as advance:
        for index in range(motion.n_frames):
            vertices = place_vertices(profile.face, motion.expression[index], motion.pose[index])
            yield draw_mesh(vertices, profile.face, colours, profile.size)
            advance(1)
