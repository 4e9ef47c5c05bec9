"""`talkface reenact`: drive a finetuned person with another person's video.

The driver's clip gets its own face model, so its expressions are deformations of *its*
neutral face; those deformations (frontal, pose-free, in the same mesh topology and units as
the target's model) are projected onto the target's expression basis and added to the target's
own neutral expression. Head motion is transferred the same way: the driver's rotation and
movement around its own average, applied around the target clip's average pose. A different
face shape therefore never distorts the target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface import progress
from talkface.config import DEFAULT_CRF, ReconstructConfig, TrackConfig, check_crf
from talkface.controls import Controls, apply_controls, view_change
from talkface.device import resolve_device
from talkface.errors import NoFaceError
from talkface.face import topology
from talkface.face.fit import build_model
from talkface.face.model import FaceFit, MeshFaceModel, project_landmarks
from talkface.face.tracker import track_video
from talkface.media import check_destination, load_audio, probe, require_video
from talkface.motion import Motion, save_motion
from talkface.motion.model import own_blinks
from talkface.profile import Profile, load_profile
from talkface.output import render_video


@dataclass(frozen=True)
class ReenactResult:
    video: Path
    motion: Motion
    driver_mouth_openness: np.ndarray  # (T,) the driver's tracked mouth opening, for evaluation
    notes: list[str]
    n_frames: int
    seconds: float


def transfer_motion(driver_model: MeshFaceModel, driver_fit: FaceFit, target: Profile) -> Motion:
    """The driver's expressions and head motion, relative to its own average, on the target."""
    valid = driver_fit.valid
    if not valid.any():
        raise NoFaceError("the driver video has no frame with a usable face")
    expression = np.where(valid[:, None], driver_fit.expression, np.median(driver_fit.expression[valid], 0))
    displacement = np.einsum("tk,kvc->tvc", expression - np.median(expression[valid], 0), driver_model.expression_basis)
    target_neutral = np.median(target.clip_fit.expression[target.clip_fit.valid], 0)
    target_expression = target_neutral + np.einsum("tvc,kvc->tk", displacement, target.face.expression_basis)

    pose = np.where(valid[:, None], driver_fit.pose, np.median(driver_fit.pose[valid], 0)).astype(np.float64)
    driver_centre = np.median(pose, 0)
    target_centre = np.median(target.clip_fit.pose[target.clip_fit.valid], 0).astype(np.float64)
    size_ratio = target_centre[5] / driver_centre[5]
    moved = np.empty_like(pose)
    moved[:, :3] = target_centre[:3] + (pose[:, :3] - driver_centre[:3])
    moved[:, 3:5] = target_centre[3:5] + (pose[:, 3:5] - driver_centre[3:5]) * size_ratio
    moved[:, 5] = target_centre[5] * pose[:, 5] / driver_centre[5]
    fit = FaceFit(moved.astype(np.float32), target_expression.astype(np.float32))
    return Motion(fit.expression, fit.pose, project_landmarks(target.face, fit), 25.0)


def with_blinks(motion: Motion, profile: Profile, per_minute: float, seed: int = 0) -> Motion:
    """The motion with its eye movement replaced by the person's blinks at `per_minute`."""
    rng = np.random.default_rng(seed)
    expression = own_blinks(motion.expression, profile.motion.blinks, profile.face, motion.fps, rng, per_minute)
    fit = FaceFit(motion.pose, expression.astype(np.float32))
    return Motion(fit.expression, fit.pose, project_landmarks(profile.face, fit), motion.fps)


def reenact(
    driver: str | Path,
    out: str | Path,
    person: str | Path | Profile | None = None,
    audio: str | Path | None = None,
    controls: Controls = Controls(),
    device: str = "auto",
    refine: bool = True,
    background: str | None = None,
    motion_path: str | Path | None = None,
    blink_rate: float | None = None,
    seed: int = 0,
    crf: int = DEFAULT_CRF,
) -> ReenactResult:
    """Make the profile's person perform the driver video's expressions and head motion.

    Args:
        driver: a video of anyone talking (one face).
        out: the .mp4 to write.
        person: profile folder or Profile (default: the most recently finetuned).
        audio: sound for the output (default: the driver's own).
        controls: pose offsets, pose scale, frontalisation, mouth scale.
        refine, background: as for `speak`.
        motion_path: also write the transferred motion here.
        blink_rate: None keeps the driver's blinks; a number replaces them with the person's own
            blinks at that rate per minute (0: none), placed with `seed`.
        crf: x264 quality of the output (17 visually lossless, 0 lossless).

    Raises:
        InputError: unreadable driver or audio; NoFaceError, MultipleFacesError: not one face.
    """
    started = time.perf_counter()
    controls.check()
    check_crf(crf)
    check_destination(out, (driver, audio, motion_path))
    profile = person if isinstance(person, Profile) else load_profile(person)
    info = probe(driver)
    require_video(info)
    sound = load_audio(audio) if audio else (load_audio(driver) if info.has_audio else None)
    progress.log(f"tracking the driver {Path(driver).name}")
    driver_track = track_video(driver, TrackConfig())
    driver_model, driver_fit = build_model(driver_track, ReconstructConfig())
    motion = transfer_motion(driver_model, driver_fit, profile)
    if blink_rate is not None:
        motion = with_blinks(motion, profile, blink_rate, seed)
    driver_mouth = topology.mouth_openness(driver_track.landmarks)  # for evaluation by the caller
    natural = motion
    motion, notes = apply_controls(motion, profile, controls)
    for note in notes:
        progress.log(f"note: {note}")
    if motion_path:
        save_motion(motion_path, motion)
    render_video(profile, motion, out, sound, resolve_device(device), refine, background, view=view_change(natural, motion), crf=crf)
    return ReenactResult(Path(out), motion, driver_mouth, notes, motion.n_frames, time.perf_counter() - started)
