"""The `talkface` command: options -> config -> library call; TalkfaceError -> one line + exit code."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from talkface.config import CRF_HELP, DubConfig, FinetuneConfig, ReconstructConfig, SpeakConfig, TrackConfig
from talkface.errors import InputError, TalkfaceError

app = typer.Typer(
    help="Talking-face video from a short clip of a person and any speech. Offline, CPU or GPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# markup off: user paths and messages are printed as they are ("[x]" in a name is no style)
stdout = Console(markup=False)
stderr = Console(stderr=True, markup=False)
_terminating = threading.Event()  # set by SIGTERM's handler


def _report(out: Path) -> Console:
    """Where a command's one-line result goes: stdout, or stderr when the video itself is on stdout."""
    from talkface.media.destination import is_stdout

    return stderr if is_stdout(out) else stdout


_TRACK = TrackConfig()
_RECONSTRUCT = ReconstructConfig()
_FINETUNE = FinetuneConfig()
_SPEAK = SpeakConfig()
DEVICE_HELP = "Compute device: auto, cpu or cuda."
REFINE_HELP = "Pass frames through the profile's GAN refiner (--no-refine: the coarse render, faster)."
# controls shared by speak, render and reenact (see talkface.controls)
YAW = typer.Option(0.0, "--yaw", help="Degrees added to the head's yaw (left-right turn; the sign is that of the yaw `talkface evaluate` reports).")
PITCH = typer.Option(0.0, "--pitch", help="Degrees added to the head's pitch (nod; sign as `talkface evaluate` reports it).")
ROLL = typer.Option(0.0, "--roll", help="Degrees added to the head's roll (sideways tilt; sign as `talkface evaluate` reports it).")
POSE_SCALE = typer.Option(1.0, "--pose-scale", help="Head motion around its average, times this: 0 still, 0.5 calmer, 1.5 livelier.")
FRONTAL = typer.Option(False, "--frontal", help="Frontalise: the head faces the camera on average.")
MOUTH_SCALE = typer.Option(1.0, "--mouth-scale", help="Amplitude of lip and jaw motion: 0.5 calmer, 1.5 wider (eyes untouched).")
BACKGROUND = typer.Option(None, "--background", help="Replace the scene behind the person: an image, a video (looped), a colour name, #rrggbb or r,g,b.")


def _controls(yaw: float, pitch: float, roll: float, pose_scale: float, frontal: bool, mouth_scale: float):
    from talkface.controls import Controls

    return Controls(yaw=yaw, pitch=pitch, roll=roll, pose_scale=pose_scale, frontal=frontal, mouth_scale=mouth_scale)


def reports_errors(command):
    """Turn a TalkfaceError into `error: ...` on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return _unless_terminated(command, *args, **kwargs)
        except TalkfaceError as exc:
            stderr.print(Text.assemble(("error:", "bold red"), f" {type(exc).__name__}: {exc}"), highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except typer.Exit:  # a command's own exit status (batch with failed rows, doctor with a missing part)
            raise
        except KeyboardInterrupt:
            stderr.print("interrupted; finished stages are cached and a rerun resumes from them")
            raise typer.Exit(130) from None
        except MemoryError:
            _fail("MemoryError: out of memory; close other programs, or give a shorter input (finished stages are cached)")
        except BrokenPipeError:  # `--out -` and the program reading stdout stopped reading
            _fail(
                "BrokenPipeError: the program reading talkface's stdout (a player reading --out -, or a pipe such as | head) "
                "closed it before the end; keep it reading until talkface finishes, or write to a file"
            )
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            _fail(f"{type(exc).__name__}:{where}: {exc.strerror or exc}; check the disk space and permissions there, then rerun (finished stages are cached)")
        except Exception as exc:  # noqa: BLE001 - a bug must still end in one line, not a traceback
            if os.environ.get("TALKFACE_DEBUG"):
                raise
            _fail(f"internal error {type(exc).__name__}: {exc}; this is a bug in talkface: rerun with TALKFACE_DEBUG=1 for the traceback and report it")

    return wrapper


def _unless_terminated(command, *args, **kwargs):
    """Run the command; an error raised after SIGTERM arrived is the termination itself.

    The handler's SystemExit can be turned into another error by the code it interrupts: in the
    middle of an import, importlib's lock bookkeeping raises KeyError instead. That run was
    terminated, not broken, so it ends as a termination (143), not as a bug report.
    """
    try:
        return command(*args, **kwargs)
    except Exception:
        if _terminating.is_set():
            raise SystemExit(143) from None
        raise


def _fail(message: str) -> None:
    stderr.print(Text.assemble(("error:", "bold red"), f" {message}"), highlight=False, soft_wrap=True)
    raise typer.Exit(1) from None


@app.command()
@reports_errors
def track(
    video: Path = typer.Option(..., "--video", "-v", help="Clip of one person talking (mp4, mov, mkv, webm)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Work folder for results and cache (default: ./VIDEO-NAME-track)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
    save_motion: Optional[Path] = typer.Option(None, "--save-motion", help="Also write the clip's motion file (.npz)."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Write overlay.mp4 with the fitted mesh drawn."),
    force: bool = typer.Option(False, "--force", help="Ignore cached results and redo every stage."),
    smoothing_window: int = typer.Option(_TRACK.smoothing_window, help="Frames in the zero-lag landmark smoother (1 = off)."),
    max_gap: int = typer.Option(_TRACK.max_interpolated_gap, help="Longest face-less run (frames) filled by interpolation."),
    n_expression: int = typer.Option(_RECONSTRUCT.n_expression, help="Expression basis size."),
    person: Optional[Path] = typer.Option(None, "--person", "--profile", "-p", help="Fit in this finetuned person's identity and expression basis (only with --save-motion)."),
) -> None:
    """Track the face in a clip and reconstruct it in 3D (identity, head pose, expression, texture)."""
    from talkface.motion import save_motion as write_motion
    from talkface.track import track as run_track

    if person is not None:
        if save_motion is None:
            raise typer.BadParameter("--person needs --save-motion: it writes the clip's motion in that person's basis")
        from talkface.track import track_in_profile

        motion = track_in_profile(video, person, track_config=TrackConfig(smoothing_window=smoothing_window, max_interpolated_gap=max_gap))
        write_motion(save_motion, motion)
        stderr.print(f"motion of {video.name} in the basis of {person}: {motion.n_frames} frames -> {save_motion}")
        return
    out = out or Path(f"{video.stem}-track")
    result = run_track(
        video,
        out,
        TrackConfig(smoothing_window=smoothing_window, max_interpolated_gap=max_gap),
        ReconstructConfig(n_expression=n_expression),
        overlay=overlay,
        force=force,
    )
    if save_motion:
        write_motion(save_motion, result.motion())
    summary = result.summary
    if as_json:
        print(json.dumps(summary.to_json()))
        return
    table = Table(title=f"talkface track: {video.name}", show_header=False)
    table.add_row("frames tracked", f"{summary.n_tracked} / {summary.n_frames} at {summary.fps:g} fps ({summary.width}x{summary.height})")
    table.add_row("gaps (no face)", _ranges(summary.gaps) or "none")
    table.add_row("reprojection", f"{summary.mean_reprojection_px:.2f} px (raw detections {summary.mean_reprojection_raw_px:.2f} px)")
    table.add_row("head pose std", ", ".join(f"{k} {v:.1f}°" for k, v in summary.pose_std_deg.items()))
    table.add_row("speed", "cached" if summary.cached else f"{summary.frames_per_second:.0f} frames/s")
    table.add_row("finetune", "ready" if summary.finetune_ready else summary.finetune_problem)
    table.add_row("sound and picture", _clock_words(summary.picture_after_sound_s))
    table.add_row("results", str(out) + (f"  (overlay: {summary.overlay})" if summary.overlay else ""))
    stdout.print(table)


def _ranges(ranges) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ranges)


def _clock_words(picture_after_sound: float | None) -> str:
    if picture_after_sound is None:
        return "no sound"
    if picture_after_sound == 0:
        return "start together"
    which = "after" if picture_after_sound > 0 else "before"
    return f"the picture starts {abs(picture_after_sound):.3f} s {which} the sound (frames are read on one clock)"


@app.command()
@reports_errors
def probe(
    path: Path = typer.Argument(..., help="A video or audio file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Say what a media file holds: its streams, size, frame rate, length, and when its picture starts against its sound."""
    from dataclasses import asdict

    from talkface.media import probe as probe_media
    from talkface.media.clock import media_clock

    info, clock = probe_media(path), media_clock(path)
    report = {**asdict(info), "path": str(info.path), "clock": asdict(clock), "overlap_s": clock.overlap}
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"talkface probe: {path.name}", show_header=False)
    if info.has_video:
        table.add_row("video", f"{info.width}x{info.height}, {info.fps:.3f} frames/s, {info.duration:.2f} s")
    table.add_row("audio", f"{info.audio_sample_rate} Hz" if info.has_audio else "none")
    if info.has_video:
        table.add_row("sound and picture", _clock_words(None if info.picture_after_sound is None else round(info.picture_after_sound, 4)))
    if clock.overlap is not None:
        table.add_row("played together", f"{clock.overlap[0]:.2f}-{clock.overlap[1]:.2f} s ({clock.overlap[1] - clock.overlap[0]:.2f} s)")
    stdout.print(table)


@app.command()
@reports_errors
def finetune(
    video: Optional[Path] = typer.Option(None, "--video", "-v", help="10-30 s of one person talking, with sound."),
    image: Optional[Path] = typer.Option(
        None, "--image", "-i", help="Or one photo (a portrait, painting, statue): a profile in seconds, with motion learned from many people."
    ),
    size: int = typer.Option(720, "--size", help="With --image: the longer side of the working frame and of its videos (px)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Profile folder (default: $TALKFACE_HOME/profiles/VIDEO-OR-PHOTO-NAME)."),
    features: str = typer.Option(_FINETUNE.features, help="Audio features: mfcc, whisper or mfcc+whisper."),
    generic: bool = typer.Option(
        _FINETUNE.use_generic, "--generic/--no-generic", help="Start from the generic multi-speaker audio->lip model (needs --features mfcc+whisper)."
    ),
    preset: str = typer.Option(
        _FINETUNE.preset, help="Refiner training, adapting the refiner pretrained across many people: draft (2-3 min for a 20-s clip on 2 CPU cores), standard (about 4 min) or best (wider, trained from nothing: long; for a GPU)."
    ),
    refiner: bool = typer.Option(_FINETUNE.refiner, "--refiner/--no-refiner", help="Train the GAN refiner (without it, speak gives the coarse render)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    force: bool = typer.Option(False, "--force", help="Ignore cached stages and redo everything."),
    as_json: bool = typer.Option(False, "--json", help="Print the profile summary as JSON."),
) -> None:
    """Learn a person profile from a clip: face model, audio->motion model, head-motion style, blinks, GAN refiner.
    Or from one photo (--image): the face from the photo, its motion from the generic models.

    Interrupted? Run the same command again: finished stages are reused and refiner training resumes from its checkpoint.
    """
    from talkface.finetune import finetune as run_finetune

    if (video is None) == (image is None):
        raise InputError("give either --video CLIP (10-30 s of the person talking) or --image PHOTO (one photo of them)")
    if image is not None:
        from talkface.oneshot import finetune_image

        profile = finetune_image(image, out, size)
        if as_json:
            print(json.dumps({**profile.info.to_json(), "folder": str(profile.folder)}))
            return
        stdout.print(f"photo profile {profile.folder} ready in {profile.info.finetune_seconds} s ({profile.size[0]}x{profile.size[1]})", highlight=False)
        stdout.print(f"next: talkface speak --audio SPEECH.wav --person {profile.folder} --out out.mp4", highlight=False)
        return
    config = FinetuneConfig(features=features, use_generic=generic, preset=preset, refiner=refiner)
    profile = run_finetune(video, out, config, device=device, force=force)
    if as_json:
        print(json.dumps({**profile.info.to_json(), "folder": str(profile.folder)}))
        return
    validation = profile.info.validation
    stdout.print(
        f"profile {profile.folder} ready in {profile.info.finetune_seconds} s: "
        f"held-out mouth r {validation['mouth_r']:.2f}, amplitude {validation['amplitude']:.2f} on {validation['held_out_frames']} frames, "
        f"{profile.info.blinks_per_minute:.0f} blinks/min",
        highlight=False,
    )
    refined = (profile.info.refiner or {}).get("validation", {})
    if refined:
        stdout.print(
            f"refiner: held-out face PSNR {refined['face_psnr_coarse_db']:.1f} dB coarse -> {refined['face_psnr_refined_db']:.1f} dB refined, "
            f"mouth sharpness {refined['mouth_sharpness_refined']:.0f} (real {refined['mouth_sharpness_real']:.0f})",
            highlight=False,
        )
    stdout.print(f"next: talkface speak --audio SPEECH.wav --person {profile.folder} --out out.mp4", highlight=False)


@app.command()
@reports_errors
def speak(
    audio: Path = typer.Option(..., "--audio", "-a", help="Speech to say (wav, mp3, flac, m4a, or a video with sound)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .mp4, or - to stream fragmented MP4 to stdout while it is made (talkface speak ... --out - | ffplay -)."),
    person: Optional[Path] = typer.Option(None, "--person", "--profile", "-p", help="Profile folder (default: the most recently finetuned)."),
    pose: str = typer.Option(_SPEAK.pose, help="Head motion: generated (from the audio, in the person's style), clip (replay the clip's) or still."),
    seed: int = typer.Option(_SPEAK.seed, help="Seed for head motion and blinks."),
    blink_rate: Optional[float] = typer.Option(_SPEAK.blink_rate, help="Blinks per minute (default: the clip's rate; 0 turns blinks off)."),
    save_motion: Optional[Path] = typer.Option(None, "--save-motion", help="Also write the motion file (.npz)."),
    preview: bool = typer.Option(_SPEAK.preview, "--preview", help="Draw the shaded 3D face on a plain background instead of the full frame."),
    refine: bool = typer.Option(_SPEAK.refine, "--refine/--no-refine", help=REFINE_HELP),
    crf: int = typer.Option(_SPEAK.crf, help=CRF_HELP),
    yaw: float = YAW,
    pitch: float = PITCH,
    roll: float = ROLL,
    pose_scale: float = POSE_SCALE,
    frontal: bool = FRONTAL,
    mouth_scale: float = MOUTH_SCALE,
    background: Optional[str] = BACKGROUND,
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Make a video of the finetuned person saying AUDIO, in their own room, refined by their GAN refiner."""
    from talkface.speak import speak as run_speak

    config = SpeakConfig(pose=pose, seed=seed, blink_rate=blink_rate, preview=preview, refine=refine, crf=crf)
    controls = _controls(yaw, pitch, roll, pose_scale, frontal, mouth_scale)
    result = run_speak(audio, out, person, config, device, save_motion, controls, background)
    _report(out).print(
        f"{result.video}: {result.n_frames} frames in {result.seconds:.1f} s ({result.frames_per_second:.0f} frames/s)",
        highlight=False,
    )


_DUB = DubConfig()


@app.command()
@reports_errors
def dub(
    video: Path = typer.Option(..., "--video", "-v", help="Footage of the person (any length; cuts, cutaways and other people are fine)."),
    audio: Path = typer.Option(..., "--audio", "-a", help="The new speech (wav, mp3, flac, m4a, or a video with sound); the output lasts as long."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .mp4."),
    person: Optional[Path] = typer.Option(None, "--person", "--profile", "-p", help="Profile of the person (default: one built from VIDEO itself, cached and reused)."),
    fit: str = typer.Option(_DUB.fit, help="When the audio outlasts the video: pingpong (play on backwards, no jump), loop (start again, as a cut) or hold (last frame)."),
    mouth_scale: float = typer.Option(_DUB.mouth_scale, "--mouth-scale", help="Amplitude of the new lip and jaw motion: 0.5 calmer, 1.5 wider."),
    refine: bool = typer.Option(_DUB.refine, "--refine/--no-refine", help=REFINE_HELP),
    crf: int = typer.Option(_DUB.crf, help=CRF_HELP),
    preset: str = typer.Option(_DUB.preset, help="Refiner preset of the profile built from VIDEO: draft, standard or best."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Lip-sync existing footage to new audio: the video's own frames, head motion, eyes and background, with only the lower face redrawn.

    Frames without the person (cutaways, another face, no face) pass through untouched.
    Interrupted? Run the same command again: tracking, the profile and finished segments are reused.
    """
    from talkface.dub import dub as run_dub

    config = DubConfig(fit=fit, mouth_scale=mouth_scale, refine=refine, crf=crf, preset=preset)
    result = run_dub(video, audio, out, person, config, device)
    stdout.print(
        f"{result.video}: {result.n_frames} frames ({result.dubbed_frames} with the face redrawn, {result.shots} shots) "
        f"in {result.seconds:.1f} s ({result.frames_per_second:.1f} frames/s); person: {result.profile}",
        highlight=False,
    )


@app.command()
@reports_errors
def render(
    motion: Path = typer.Option(..., "--motion", "-m", help="Motion file from speak --save-motion or track --person --save-motion."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .mp4."),
    person: Optional[Path] = typer.Option(None, "--person", "--profile", "-p", help="Profile folder (default: the most recently finetuned)."),
    audio: Optional[Path] = typer.Option(None, "--audio", "-a", help="Sound to mux (any audio file or a video with sound)."),
    refine: bool = typer.Option(_SPEAK.refine, "--refine/--no-refine", help=REFINE_HELP),
    crf: int = typer.Option(_SPEAK.crf, help=CRF_HELP),
    yaw: float = YAW,
    pitch: float = PITCH,
    roll: float = ROLL,
    pose_scale: float = POSE_SCALE,
    frontal: bool = FRONTAL,
    mouth_scale: float = MOUTH_SCALE,
    background: Optional[str] = BACKGROUND,
    onto: Optional[Path] = typer.Option(
        None, "--onto", help="Redraw the face in place on this video's frames (the video the motion was tracked from: track --person P --save-motion M.npz), on its clock and with its sound."
    ),
    mute: bool = typer.Option(False, "--mute", help="Write no sound (render --onto otherwise keeps the video's own sound when --audio is not given)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Render any motion file of the profile's person as a full-frame video (self-reenactment with a clip's own motion)."""
    from talkface.render_motion import render as run_render

    if mute and audio:
        raise InputError("--mute writes no sound but --audio gives one; give one of them")
    controls = _controls(yaw, pitch, roll, pose_scale, frontal, mouth_scale)
    result = run_render(motion, out, person, audio, controls, device, refine, background, onto, crf, keep_sound=not mute)
    _report(out).print(f"{out}: {result.motion.n_frames} frames in {result.seconds:.1f} s ({result.frames_per_second:.0f} frames/s)", highlight=False)


@app.command()
@reports_errors
def reenact(
    driver: Path = typer.Option(..., "--driver", "-d", help="A video of anyone talking: their expressions and head motion drive the person."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .mp4."),
    person: Optional[Path] = typer.Option(None, "--person", "--profile", "-p", help="Profile folder (default: the most recently finetuned)."),
    audio: Optional[Path] = typer.Option(None, "--audio", "-a", help="Sound for the output (default: the driver's)."),
    refine: bool = typer.Option(_SPEAK.refine, "--refine/--no-refine", help=REFINE_HELP),
    crf: int = typer.Option(_SPEAK.crf, help=CRF_HELP),
    yaw: float = YAW,
    pitch: float = PITCH,
    roll: float = ROLL,
    pose_scale: float = POSE_SCALE,
    frontal: bool = FRONTAL,
    mouth_scale: float = MOUTH_SCALE,
    background: Optional[str] = BACKGROUND,
    blink_rate: Optional[float] = typer.Option(None, help="Blinks per minute in the person's own style (default: the driver's blinks; 0 turns blinks off)."),
    save_motion: Optional[Path] = typer.Option(None, "--save-motion", help="Also write the transferred motion (.npz)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Drive the finetuned person with another video: expressions and head motion relative to the driver's own average."""
    from talkface.reenact import reenact as run_reenact

    controls = _controls(yaw, pitch, roll, pose_scale, frontal, mouth_scale)
    result = run_reenact(driver, out, person, audio, controls, device, refine, background, save_motion, blink_rate, crf=crf)
    _report(out).print(f"{result.video}: {result.n_frames} frames in {result.seconds:.1f} s", highlight=False)


@app.command()
@reports_errors
def batch(
    jobs: Path = typer.Argument(..., help="Manifest: .csv or .jsonl with person (or profile), audio, out (+ optional pose, seed, blink_rate, refine, crf), or a folder with people/ and audio/."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Parallel worker processes on this machine (default: one per core, up to 8)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run on a Ray cluster: local (start one here), auto, or ray://HOST:PORT."),
    report: Optional[Path] = typer.Option(None, "--report", help="JSON report, read to resume (default: JOBS.report.json)."),
    preset: str = typer.Option(_FINETUNE.preset, help="Refiner preset for people given as clips (finetuned once)."),
    retry_failed: bool = typer.Option(True, "--retry-failed/--keep-failed", help="Run rows that failed last time again."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Render many lines for many people. Finished rows are skipped on a rerun; a bad row never stops the others.

    Exit code 1 if any row failed (the table and the report say why).
    """
    from talkface.batch import run_batch

    result = run_batch(jobs, workers, ray, report, preset, device, retry_failed)
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        table = Table(title=f"talkface batch: {result.counts['done']} done, {result.counts['skipped']} skipped, {result.counts['failed']} failed in {result.seconds:.1f} s")
        for column in ("row", "person", "audio", "out", "status", "time (s)", "problem"):
            table.add_column(column)
        colours = {"done": "green", "skipped": "cyan", "failed": "red"}
        for item in result.results:
            table.add_row(
                str(item.row), Path(item.person).name, Path(item.audio).name, Path(item.out).name,
                Text(item.status, style=colours[item.status]), f"{item.seconds:.1f}", item.error,
            )
        stdout.print(table)
        stdout.print(f"report: {result.report_path}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
@reports_errors
def evaluate(
    generated: Path = typer.Option(..., "--generated", "-g", help="The talking video to judge."),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="The real video (same person, same length)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    report: Optional[Path] = typer.Option(None, "--report", help="Folder for contact_sheet.png and curves.png."),
) -> None:
    """Measure a talking video offline: image, landmark, pose, sync and identity metrics."""
    from talkface.evaluate import evaluate as run_evaluate

    result = run_evaluate(generated, reference, report)
    if as_json:
        print(json.dumps(result.to_json()))
        return
    stdout.print(_evaluation_table(result))
    if result.report:
        stdout.print(f"report: {result.report}/contact_sheet.png, {result.report}/curves.png")


def _evaluation_table(result) -> Table:
    table = Table(title="talkface evaluate")
    table.add_column("metric")
    table.add_column("generated")
    if result.reference is not None:
        table.add_column("reference")
    videos = [result.generated] + ([result.reference] if result.reference is not None else [])

    def row(name, getter, fmt="{:.3f}"):
        values = [getter(v) for v in videos]
        table.add_row(name, *["n/a" if v is None else fmt.format(v) for v in values])

    row("face detection rate", lambda v: v.face_detection_rate, "{:.1%}")
    row("A/V offset (frames, + = video late)", lambda v: v.av_offset_frames, "{:d}")
    row("A/V sync peak r", lambda v: v.av_sync_peak)
    row("blinks / minute", lambda v: v.blinks_per_minute, "{:.1f}")
    row("yaw std (°)", lambda v: v.pose_std_deg["yaw"], "{:.2f}")
    row("pitch std (°)", lambda v: v.pose_std_deg["pitch"], "{:.2f}")
    row("landmark jitter (px/frame²)", lambda v: v.landmark_jitter)
    row("mouth sharpness (Laplacian var)", lambda v: v.mouth_sharpness, "{:.1f}")
    comparison = result.comparison
    if comparison is not None:
        for name, value in (
            ("PSNR full / face (dB)", f"{comparison.psnr_full:.2f} / {comparison.psnr_face:.2f}"),
            ("SSIM full / face", f"{comparison.ssim_full:.4f} / {comparison.ssim_face:.4f}"),
            ("M-LMD / F-LMD (px @ 256-px face)", f"{comparison.m_lmd:.3f} / {comparison.f_lmd:.3f}"),
            ("mouth opening r", f"{comparison.mouth_opening_r:.3f}"),
            ("pose error pitch/yaw/roll (°)", " / ".join(f"{v:.2f}" for v in comparison.pose_error_deg.values())),
            ("pose r pitch/yaw/roll", " / ".join(f"{v:.3f}" for v in comparison.pose_r.values())),
            ("identity distance (<0.6 same)", "n/a" if comparison.identity_distance is None else f"{comparison.identity_distance:.3f}"),
            ("time offset (frames, + = generated late)", f"{comparison.time_offset_frames} (r={comparison.time_offset_peak:.3f})"),
        ):
            table.add_row(name, value, "")
    return table


@app.command()
@reports_errors
def studio(
    port: int = typer.Option(7860, "--port", help="Port to serve the page on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on: 127.0.0.1 keeps it to this machine; 0.0.0.0 opens it to the network (needs --auth)."),
    auth: Optional[str] = typer.Option(None, "--auth", help="USER:PASS the page asks for (required with a --host other than this machine's)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Folder for uploads and jobs (default: $TALKFACE_HOME/studio); profiles go to $TALKFACE_HOME/profiles, shared with the CLI."),
    max_upload: int = typer.Option(1024, "--max-upload", help="Largest upload in MB."),
    jobs: int = typer.Option(1, "--jobs", help="Jobs run at once (the others wait their turn)."),
) -> None:
    """A local web page for the whole workflow: make a profile, speak, dub, batch, evaluate (needs the studio extra, which make install includes)."""
    from talkface.studio.serve import run_studio

    run_studio(port, host, auth, work, max_upload, jobs, lambda url: stdout.print(f"talkface studio on {url} (Ctrl-C stops it)", highlight=False))


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Report versions, ffmpeg, the face tracker model, the compute device and what is missing."""
    from talkface.doctor import as_json as report_json
    from talkface.doctor import run_checks

    checks = run_checks()
    report = report_json(checks)
    if as_json:
        print(json.dumps(report))
    else:
        table = Table(title="talkface doctor")
        for column in ("check", "status", "detail"):
            table.add_column(column)
        for check in checks:
            status = Text("ok", "green") if check.ok else (Text("MISSING", "red") if check.required else Text("optional", "yellow"))
            table.add_row(check.name, status, check.detail)
        stdout.print(table)
    if not report["ok"]:
        raise typer.Exit(1)


def _print_version(value: bool) -> None:
    if value:
        from talkface._version import __version__

        print(f"talkface {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Talking-face video from a short clip of a person and any speech. Offline, CPU or GPU."""


def _terminated(signum, frame) -> None:
    """SIGTERM ends the run like Ctrl-C does: `finally` blocks remove temporaries, caches stay."""
    _terminating.set()
    stderr.print("terminated; finished stages are cached and a rerun resumes from them")
    raise SystemExit(143)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    finally:
        # the run is over (output written, or temporaries removed): a SIGTERM that arrives while
        # Python shuts down (atexit callbacks) must not turn into a traceback or a false failure
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
