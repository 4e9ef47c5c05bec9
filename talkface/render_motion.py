"""`talkface render`: draw any motion file of a profile's person as a full-frame video."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from talkface import progress
from talkface.config import DEFAULT_CRF, check_crf
from talkface.controls import Controls, apply_controls
from talkface.device import resolve_device
from talkface.media import check_destination, load_audio, probe
from talkface.motion import Motion, load_motion
from talkface.output import render_video
from talkface.profile import Profile, load_profile


@dataclass(frozen=True)
class RenderResult:
    """What `render` made."""

    video: Path
    motion: Motion
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.motion.n_frames / self.seconds if self.seconds > 0 else 0.0


def render(
    motion: str | Path,
    out: str | Path,
    person: str | Path | Profile | None = None,
    audio: str | Path | None = None,
    controls: Controls = Controls(),
    device: str = "auto",
    refine: bool = True,
    background: str | None = None,
    onto: str | Path | None = None,
    crf: int = DEFAULT_CRF,
    keep_sound: bool = True,
) -> RenderResult:
    """Render a motion file (from `speak --save-motion` or `track --person P --save-motion`).

    Args:
        motion: the motion file (.npz).
        out: the .mp4 to write.
        person: profile folder or Profile (default: the most recently finetuned).
        audio: sound to mux (any audio file or a video with sound).
        controls: pose offsets, pose scale, frontalisation, mouth scale.
        device: 'auto', 'cpu' or 'cuda'.
        refine: pass frames through the profile's GAN refiner.
        background: an image, a video or a colour to put behind the person.
        onto: redraw the face in place on this video (the one the motion was tracked from), on
            its clock: frame k of the motion is drawn on the picture shown k / 25 s into it.
        crf: x264 quality of the output (17 visually lossless, 0 lossless).
        keep_sound: with `onto` and no `audio`, mux the video's own sound (False: none).

    Raises:
        InputError: a bad motion file, audio or output path (checked before any rendering).
    """
    # 1. check inputs and the output before heavy work
    controls.check()
    check_crf(crf)
    check_destination(out, (motion, audio, onto))
    profile = person if isinstance(person, Profile) else load_profile(person)
    loaded, notes = apply_controls(load_motion(motion), profile, controls)
    for note in notes:
        progress.log(f"note: {note}")
    if audio:
        sound = load_audio(audio)
    elif onto and keep_sound and probe(onto).has_audio:
        sound = load_audio(onto)
    else:
        sound = None
    # 2. render, refine and encode
    started = time.perf_counter()
    render_video(profile, loaded, out, sound, resolve_device(device), refine, background, onto, crf=crf)
    return RenderResult(Path(out), loaded, time.perf_counter() - started)
