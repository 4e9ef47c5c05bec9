"""`talkface studio`: the whole workflow in a local web page (Gradio), over the studio's jobs.

Every long action (make a profile, speak, preview, dub, batch, evaluate) checks its inputs here,
in the page's request, and answers a bad one at once with the page's own message (gr.Error); a
good one becomes a job (studio/jobs.py) that runs the `talkface` command, and the request follows
the job until it ends, showing its stage, progress and (for a profile) the refiner's held-out PSNR.
The jobs run on whether or not a page watches them: the Jobs tab lists them all, and a reloaded
page takes up the jobs it last started (kept in the browser's local storage).

Private by default: no analytics, no fonts or scripts from elsewhere, uploads size-limited and
stored in WORK/uploads, outputs in WORK/jobs.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from talkface.errors import InputError, TalkfaceError
from talkface.profile import talkface_home
from talkface.studio.jobs import CANCELLED, DONE, FAILED, FINISHED, INTERRUPTED, QUEUED, RUNNING, Job, JobStore, safe_name

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_CLIP_SECONDS = 300.0  # a profile's clip: finetune wants 10-30 s; longer is refused, not tracked for hours
MAX_MEDIA_SECONDS = 3600.0  # speech to say, footage to dub, videos to evaluate
PREVIEW_SECONDS = 4.0  # the quick preview: the coarse render of the audio's first seconds
FOLLOW_EVERY = 0.5  # s between a request's looks at its job
PRESETS = ("draft", "standard", "best")
POSES = ("generated", "clip", "still")
_STATE_WORDS = {QUEUED: "waiting", RUNNING: "running", DONE: "done", FAILED: "failed", CANCELLED: "cancelled", INTERRUPTED: "interrupted"}


@dataclass(frozen=True)
class Settings:
    work: Path  # uploads and jobs
    profiles: Path  # the profile store the CLI uses too
    max_upload_mb: int = 1024
    parallel: int = 1


def default_work() -> Path:
    return talkface_home() / "studio"


# ---- checks of what a user gives (each failure is one sentence with its fix)

def _need(path, what: str) -> Path:
    if not path:
        raise InputError(f"no {what} given: choose a file first")
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"the {what} {path.name} is empty (0 bytes): upload it again, or choose another file")
    return path


def _media(path: Path, what: str, needs: str, max_seconds: float = MAX_MEDIA_SECONDS):
    """probe() of an upload with the page's words for what is wrong with it."""
    from talkface.media import probe

    try:
        info = probe(path)
    except TalkfaceError:
        raise InputError(f"the {what} {path.name} is not a readable video or audio file: give an mp4, mov, mkv, webm, wav, mp3, flac or m4a") from None
    if needs == "video" and not info.has_video:
        raise InputError(f"the {what} {path.name} has no picture: give a video of the person")
    if needs == "audio" and not info.has_audio:
        raise InputError(f"the {what} {path.name} has no sound: give a file with speech (wav, mp3, flac, m4a, or a video with sound)")
    if not info.duration or info.duration != info.duration:
        raise InputError(f"the {what} {path.name} has no readable length: re-save it (for example as mp4 or wav) and upload it again")
    if info.duration > max_seconds:
        raise InputError(
            f"the {what} {path.name} is {_clock(info.duration)} long; the studio takes up to {_clock(max_seconds)}: trim it, or use the command line"
        )
    return info


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else (f"{minutes} min {secs:02d} s" if minutes else f"{secs} s")


def _profile_folder(settings: Settings, store: JobStore, choice) -> Path:
    if not choice:
        raise InputError("no profile chosen: make one in the Profile tab, or pick one from the list")
    folder = Path(choice)
    if folder.parent.resolve() != settings.profiles.resolve() or not (folder / "profile.json").is_file():
        raise InputError(f"{folder.name} is not a finished profile: pick one from the list (press ↻ to refresh it)")
    if str(folder) in store.busy_profiles():
        raise InputError(f"the profile {folder.name} is still being made: wait for its job to finish")
    return folder


def list_profiles(settings: Settings, store: JobStore) -> list[tuple[str, str]]:
    """(label, folder) of every finished profile in the store, the newest first."""
    busy = store.busy_profiles()
    found = []
    for marker in settings.profiles.glob("*/profile.json"):
        folder = marker.parent
        if str(folder) in busy:
            continue
        try:
            info = json.loads(marker.read_text())
            kind = info.get("kind", "clip")
            refined = f", refiner {info['refiner'].get('preset', '')}" if info.get("refiner") else ""
            label = f"{folder.name} ({kind}{refined})"
        except (OSError, ValueError, AttributeError):
            continue
        found.append((marker.stat().st_mtime, label, str(folder)))
    return [(label, folder) for _, label, folder in sorted(found, reverse=True)]


# ---- starting jobs (each returns the queued Job, or raises InputError before making one)

def start_profile(settings: Settings, store: JobStore, upload, preset: str, name: str) -> Job:
    source = _need(upload, "clip or photo")
    is_photo = source.suffix.lower() in PHOTO_SUFFIXES
    if not is_photo:
        _media(source, "clip", "video", MAX_CLIP_SECONDS)
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}: choose draft, standard or best")
    name = safe_name(name.strip() if name and name.strip() else source.stem)
    folder = settings.profiles / name
    if (folder / "profile.json").exists() or str(folder) in store.busy_profiles():
        raise InputError(f"a profile named {name} exists or is being made: choose another name")
    job = store.new("profile", f"profile {name} from {source.name}" + ("" if is_photo else f" ({preset})"))
    given = job.take(source, source.name)
    job.argv = ["finetune", "--image" if is_photo else "--video", str(given), "--out", str(folder)] + ([] if is_photo else ["--preset", preset])
    job.profile = str(folder)
    job.outputs = [str(folder / "profile.json")]
    return store.submit(job)


def start_speak(settings: Settings, store: JobStore, profile, audio, pose: str, yaw: float, mouth_scale: float,
                blink_rate: float, background, refine: bool, preview: bool = False) -> Job:
    folder = _profile_folder(settings, store, profile)
    speech = _need(audio, "speech")
    info = _media(speech, "speech", "audio")
    if pose not in POSES:
        raise InputError(f"unknown head motion {pose!r}: choose generated, clip or still")
    for label, value, low, high in (("yaw", yaw, -30, 30), ("mouth scale", mouth_scale, 0, 3), ("blink rate", blink_rate, -1, 120)):
        if value is None or not (low <= float(value) <= high):
            raise InputError(f"the {label} {value} is outside {low}..{high}: set it within")
    backdrop = _need(background, "background") if background else None
    if backdrop is not None and backdrop.suffix.lower() not in PHOTO_SUFFIXES:
        _media(backdrop, "background", "video")
    kind = "preview" if preview else "speak"
    job = store.new(kind, f"{'preview of ' if preview else ''}{folder.name} saying {speech.name}")
    try:
        given = job.take(speech, speech.name)
        if preview and info.duration > PREVIEW_SECONDS:  # the first seconds only
            from talkface.media import Audio, load_audio, write_audio

            whole = load_audio(given)
            given = write_audio(job.path("in/preview.wav"), Audio(whole.samples[: int(PREVIEW_SECONDS * whole.sample_rate)], whole.sample_rate))
        out = job.path("out") / ("preview.mp4" if preview else "speak.mp4")
        out.parent.mkdir(exist_ok=True)
        argv = ["speak", "--audio", str(given), "--person", str(folder), "--out", str(out), "--pose", pose,
                "--yaw", f"{float(yaw):g}", "--mouth-scale", f"{float(mouth_scale):g}"]
        if float(blink_rate) >= 0:  # -1: the clip's own rate (speak's default)
            argv += ["--blink-rate", f"{float(blink_rate):g}"]
        if backdrop is not None:
            argv += ["--background", str(job.take(backdrop, "background" + backdrop.suffix.lower()))]
        if preview or not refine:
            argv.append("--no-refine")
    except TalkfaceError:
        store.discard(job)
        raise
    job.argv, job.outputs = argv, [str(out)]
    return store.submit(job)


def start_dub(settings: Settings, store: JobStore, video, audio, profile, mouth_scale: float, refine: bool) -> Job:
    footage = _need(video, "video")
    _media(footage, "video", "video")
    speech = _need(audio, "speech")
    _media(speech, "speech", "audio")
    folder = _profile_folder(settings, store, profile) if profile else None
    job = store.new("dub", f"dub of {footage.name} with {speech.name}")
    out = job.path("out") / "dub.mp4"
    out.parent.mkdir(exist_ok=True)
    job.argv = ["dub", "--video", str(job.take(footage, footage.name)), "--audio", str(job.take(speech, "speech-" + speech.name)),
                "--out", str(out), "--mouth-scale", f"{float(mouth_scale):g}"] + (["--person", str(folder)] if folder else []) + ([] if refine else ["--no-refine"])
    job.outputs = [str(out)]
    return store.submit(job)


def start_batch(settings: Settings, store: JobStore, manifest, media) -> Job:
    listing = _need(manifest, "manifest")
    if listing.suffix.lower() not in (".csv", ".jsonl"):
        raise InputError(f"the manifest {listing.name} is not a .csv or .jsonl file: give one with the columns person, audio, out")
    job = store.new("batch", f"batch {listing.name}")
    for item in media or []:  # the files the manifest names, beside it
        job.take(_need(item, "file"), Path(item).name)
    given = job.take(listing, listing.name)
    report = job.path("out") / "report.json"
    report.parent.mkdir(exist_ok=True)
    job.argv = ["batch", str(given), "--report", str(report), "--json"]
    job.outputs, job.ok_codes = [str(report)], [0, 1]  # 1: some rows failed, the report says which
    return store.submit(job)


def start_evaluate(settings: Settings, store: JobStore, generated, reference) -> Job:
    made = _need(generated, "generated video")
    _media(made, "generated video", "video")
    real = _need(reference, "reference video") if reference else None
    if real is not None:
        _media(real, "reference video", "video")
    job = store.new("evaluate", f"evaluate {made.name}" + (f" against {real.name}" if real else ""))
    report = job.path("out") / "report"
    job.argv = ["evaluate", "--generated", str(job.take(made, "generated-" + made.name)), "--json", "--report", str(report)]
    if real is not None:
        job.argv += ["--reference", str(job.take(real, "reference-" + real.name))]
    job.outputs = [str(report / "contact_sheet.png")]
    return store.submit(job)


# ---- what the page shows of a job

def describe(store: JobStore, job: Job | None) -> str:
    """A job's state as Markdown: what it is, where it is, and its message or result."""
    if job is None:
        return ""
    words = f"**{job.title}** · {_STATE_WORDS.get(job.state, job.state)}"
    if job.state == QUEUED:
        ahead = store.ahead_of(job)
        return words + (f" ({ahead} job{'s' if ahead > 1 else ''} ahead)" if ahead else "")
    if job.state == RUNNING:
        seen = job.progress()
        line = seen["stage"]
        if seen["total"]:
            line += f" {seen['done']}/{seen['total']} ({100 * seen['done'] / seen['total']:.0f} %)"
        psnr = re.search(r"held-out ([0-9.]+) dB", seen["status"])
        if psnr:
            line += f" · refiner held-out face PSNR {psnr.group(1)} dB"
        elapsed = time.time() - (job.started or time.time())
        return f"{words} · {_clock(elapsed)}\n\n{line}\n\n{seen['log']}".rstrip()
    if job.state == DONE:
        took = (job.finished or 0) - (job.started or job.finished or 0)
        return f"{words} in {_clock(took)}" + (f"\n\n{job.message}" if job.message else "")
    return f"{words}\n\n{job.message}"


def result_files(job: Job | None) -> list[str]:
    return [path for path in (job.outputs if job and job.state == DONE else []) if Path(path).is_file()]


def evaluation_rows(job: Job | None) -> list[list]:
    """The evaluate job's metrics as (metric, value) rows."""
    if job is None or job.state != DONE:
        return []
    try:
        result = json.loads(job.path("stdout.log").read_text().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return []
    rows = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append([prefix, round(float(value), 4)])
        elif isinstance(value, str) and len(value) < 80:
            rows.append([prefix, value])

    walk("", result)
    return rows


def batch_rows(job: Job | None) -> list[list]:
    """The batch report's rows (as far as it is written): row, person, audio, out, status, seconds, problem."""
    if job is None:
        return []
    try:
        report = json.loads(job.path("out/report.json").read_text())
    except (OSError, ValueError):
        return []
    rows = []
    for item in report.get("jobs", []) if isinstance(report, dict) else []:
        if isinstance(item, dict):
            rows.append([item.get("row"), Path(str(item.get("person", ""))).name, Path(str(item.get("audio", ""))).name,
                         Path(str(item.get("out", ""))).name, item.get("status"), item.get("seconds"), item.get("error", "")])
    return rows


def batch_files(job: Job | None) -> list[str]:
    """A finished batch's report and the videos of its finished rows (those inside its folder)."""
    files = result_files(job)
    if not files:
        return []
    try:
        report = json.loads(Path(files[0]).read_text())
    except (OSError, ValueError):
        return files
    folder = job.folder.resolve()
    for item in report.get("jobs", []) if isinstance(report, dict) else []:
        out = Path(str(item.get("out", ""))) if isinstance(item, dict) else None
        if out is not None and item.get("status") in ("done", "skipped") and out.is_file() and folder in out.resolve().parents:
            files.append(str(out))
    return files


def job_rows(store: JobStore) -> list[list]:
    rows = []
    for job in store.jobs():
        seen = job.progress() if job.state == RUNNING else {}
        where = f"{seen.get('stage', '')} {seen.get('done')}/{seen.get('total')}" if seen.get("total") else seen.get("stage", "")
        rows.append([job.id, job.title, _STATE_WORDS.get(job.state, job.state), where or job.message[:120], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created))])
    return rows


# ---- the page

def build(settings: Settings, store: JobStore):
    """The studio's gr.Blocks."""
    import gradio as gr

    def page_error(exc: TalkfaceError) -> gr.Error:
        return gr.Error(str(exc), duration=None, print_exception=False)

    def follow(job: Job, shape) -> Iterator[tuple]:
        """Yield shape(job) every FOLLOW_EVERY s until the job ends, then once more."""
        while True:
            job = store.get(job.id) or job
            yield shape(job)
            if job.state in FINISHED:
                return
            time.sleep(FOLLOW_EVERY)

    def started(make, n_outputs: int):
        """Run `make()` (which starts a job) and return its job; a bad input is shown in the action's
        state (the first output) and as the page's message, and starts nothing."""
        try:
            return make()
        except TalkfaceError as exc:
            message, error = str(exc), page_error(exc)
        except OSError as exc:
            message = f"could not store the upload: {exc.strerror or exc}; check the disk space of {settings.work}"
            error = gr.Error(message, duration=None, print_exception=False)
        yield (f"**not started:** {message}", *[gr.skip()] * (n_outputs - 1))
        raise error

    def choices():
        return gr.update(choices=list_profiles(settings, store))

    def video_of(job):
        files = result_files(job)
        return files[0] if files else None

    # uploads older than a day are removed from the upload folder (each job keeps its own copy)
    with gr.Blocks(title="talkface studio", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        last = gr.BrowserState({}, storage_key="talkface-studio-jobs")  # kind -> the job this browser last started
        api_twins: list[dict] = []
        gr.Markdown("# talkface studio\nA talking video of a person from a short clip or a photo of them and any speech. Everything stays on this machine.")
        with gr.Tab("Profile"):
            gr.Markdown("A clip of 10-30 s of the person talking (a profile in minutes), or one photo of them (a profile in seconds).")
            with gr.Row():
                profile_source = gr.File(label="Clip or photo", file_types=["video", "image"], type="filepath", elem_id="profile-source")
                with gr.Column():
                    preset = gr.Radio(list(PRESETS), value="draft", label="Preset (clips: the refiner's training)", info="draft: 2-3 min on a CPU; standard: about 4 min; best: for a GPU")
                    profile_name = gr.Textbox(label="Name", placeholder="the file's name")
                    with gr.Row():
                        profile_go = gr.Button("Make profile", variant="primary", elem_id="profile-go")
                        profile_stop = gr.Button("Cancel")
            profile_state = gr.Markdown(elem_id="profile-state")
            profile_job = gr.Textbox(visible=False)

        with gr.Tab("Speak"):
            with gr.Row():
                with gr.Column():
                    with gr.Row():
                        speak_profile = gr.Dropdown(choices=list_profiles(settings, store), label="Profile", scale=4, allow_custom_value=True, elem_id="speak-profile")
                        refresh = gr.Button("↻", scale=0, min_width=40)
                    speech = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech", elem_id="speech")
                    pose = gr.Radio(list(POSES), value="generated", label="Head motion")
                    yaw = gr.Slider(-20, 20, value=0, step=1, label="Yaw (degrees)")
                    mouth = gr.Slider(0.5, 1.5, value=1.0, step=0.05, label="Mouth scale")
                    blinks = gr.Slider(-1, 40, value=-1, step=1, label="Blinks per minute (-1: the person's own rate; 0: none)")
                    backdrop = gr.File(label="Background (optional image or video)", file_types=["image", "video"], type="filepath")
                    refine = gr.Checkbox(value=True, label="Refine (the profile's GAN refiner; off: faster, coarser)")
                    with gr.Row():
                        preview_go = gr.Button(f"Quick preview ({PREVIEW_SECONDS:.0f} s)")
                        speak_go = gr.Button("Speak", variant="primary", elem_id="speak-go")
                        speak_stop = gr.Button("Cancel")
                with gr.Column():
                    speak_state = gr.Markdown(elem_id="speak-state")
                    speak_video = gr.Video(label="Result", interactive=False, elem_id="speak-video")
                    speak_file = gr.File(label="Download", interactive=False, elem_id="speak-file")
            speak_job = gr.Textbox(visible=False)

        with gr.Tab("Dub"):
            with gr.Row():
                with gr.Column():
                    dub_video = gr.Video(label="Footage of the person", sources=["upload"])
                    dub_audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="New speech")
                    dub_profile = gr.Dropdown(choices=list_profiles(settings, store), label="Profile (optional: one is made from the footage)", allow_custom_value=True)
                    dub_mouth = gr.Slider(0.5, 1.5, value=1.0, step=0.05, label="Mouth scale")
                    dub_refine = gr.Checkbox(value=True, label="Refine")
                    with gr.Row():
                        dub_go = gr.Button("Dub", variant="primary")
                        dub_stop = gr.Button("Cancel")
                with gr.Column():
                    dub_state = gr.Markdown(elem_id="dub-state")
                    dub_result = gr.Video(label="Result", interactive=False)
            dub_job = gr.Textbox(visible=False)

        with gr.Tab("Batch"):
            gr.Markdown("A manifest (.csv or .jsonl with the columns person, audio, out) and the files it names.")
            with gr.Row():
                manifest = gr.File(label="Manifest", file_types=[".csv", ".jsonl"], type="filepath")
                batch_media = gr.File(label="Files it names", file_count="multiple", type="filepath")
            with gr.Row():
                batch_go = gr.Button("Run batch", variant="primary")
                batch_stop = gr.Button("Cancel")
            batch_state = gr.Markdown(elem_id="batch-state")
            batch_table = gr.Dataframe(headers=["row", "person", "audio", "out", "status", "s", "problem"], interactive=False)
            batch_report = gr.File(label="Report and videos", file_count="multiple", interactive=False)
            batch_job = gr.Textbox(visible=False)

        with gr.Tab("Evaluate"):
            with gr.Row():
                generated = gr.Video(label="Generated video", sources=["upload"])
                reference = gr.Video(label="Reference video (optional)", sources=["upload"])
            with gr.Row():
                evaluate_go = gr.Button("Evaluate", variant="primary")
                evaluate_stop = gr.Button("Cancel")
            evaluate_state = gr.Markdown(elem_id="evaluate-state")
            metrics = gr.Dataframe(headers=["metric", "value"], interactive=False)
            with gr.Row():
                sheet = gr.Image(label="Contact sheet", interactive=False)
                curves = gr.Image(label="Curves", interactive=False)
            evaluate_job = gr.Textbox(visible=False)

        with gr.Tab("Jobs"):
            jobs_table = gr.Dataframe(headers=["job", "what", "state", "where", "started"], interactive=False)
            with gr.Row():
                picked = gr.Textbox(label="Job (click a row)", scale=4)
                jobs_refresh = gr.Button("↻ Refresh", scale=0)
                jobs_stop = gr.Button("Cancel job", scale=0)
            picked_state = gr.Markdown()
            picked_files = gr.File(label="Outputs", file_count="multiple", interactive=False, elem_id="picked-files")

        # ---- events: each action starts a job and follows it; the job id goes to the browser's store
        def action(button, name: str, fn, inputs, outputs) -> None:
            """The button's event, streaming the job's state to the page (API NAME_live), and an API
            twin NAME for scripts that answers once, when the job has ended (a streamed call's
            last update can arrive after its result, so a script reading the result may see the
            job still running)."""
            button.click(fn, inputs, outputs, api_name=f"{name}_live", concurrency_limit=None, show_progress="hidden")

            def to_the_end(*values):
                last = None
                for last in fn(*values):
                    pass
                return last

            api_twins.append(dict(fn=to_the_end, inputs=inputs, outputs=outputs, api_name=name))

        def remember(memory, kind, job):
            return {**(memory or {}), kind: job.id}

        def profile_action(upload, preset_value, name, memory):
            job = yield from started(lambda: start_profile(settings, store, upload, preset_value, name), 5)
            memory = remember(memory, "profile", job)
            for shown in follow(job, lambda j: describe(store, j)):
                yield shown, job.id, memory, gr.skip(), gr.skip()
            yield describe(store, store.get(job.id)), job.id, memory, choices(), choices()

        action(profile_go, "make_profile", profile_action, [profile_source, preset, profile_name, last], [profile_state, profile_job, last, speak_profile, dub_profile])

        def speak_action(profile, audio, pose_value, yaw_value, mouth_value, blink_value, backdrop_value, refine_value, memory, preview=False):
            job = yield from started(lambda: start_speak(settings, store, profile, audio, pose_value, yaw_value, mouth_value, blink_value, backdrop_value, refine_value, preview), 5)
            memory = remember(memory, "speak", job)
            for shown in follow(job, lambda j: (describe(store, j), video_of(j), video_of(j))):
                yield *shown, job.id, memory

        speak_inputs = [speak_profile, speech, pose, yaw, mouth, blinks, backdrop, refine, last]
        speak_outputs = [speak_state, speak_video, speak_file, speak_job, last]
        action(speak_go, "speak", speak_action, speak_inputs, speak_outputs)
        action(preview_go, "preview", lambda *values: (yield from speak_action(*values, preview=True)), speak_inputs, speak_outputs)

        def dub_action(video, audio, profile, mouth_value, refine_value, memory):
            job = yield from started(lambda: start_dub(settings, store, video, audio, profile, mouth_value, refine_value), 4)
            memory = remember(memory, "dub", job)
            for shown in follow(job, lambda j: (describe(store, j), video_of(j))):
                yield *shown, job.id, memory

        action(dub_go, "dub", dub_action, [dub_video, dub_audio, dub_profile, dub_mouth, dub_refine, last], [dub_state, dub_result, dub_job, last])

        def batch_action(listing, files, memory):
            job = yield from started(lambda: start_batch(settings, store, listing, files), 5)
            memory = remember(memory, "batch", job)
            for shown in follow(job, lambda j: (describe(store, j), batch_rows(j), batch_files(j) or None)):
                yield *shown, job.id, memory

        action(batch_go, "batch", batch_action, [manifest, batch_media, last], [batch_state, batch_table, batch_report, batch_job, last])

        def evaluate_action(made, real, memory):
            job = yield from started(lambda: start_evaluate(settings, store, made, real), 6)
            memory = remember(memory, "evaluate", job)
            for shown in follow(job, lambda j: (describe(store, j), evaluation_rows(j), *_report_images(j))):
                yield *shown, job.id, memory

        action(evaluate_go, "evaluate", evaluate_action, [generated, reference, last], [evaluate_state, metrics, sheet, curves, evaluate_job, last])

        hidden = gr.Button(visible=False)  # the API twins hang on it (scripts call them by name; the page never shows it)
        for twin in api_twins:
            hidden.click(**twin, concurrency_limit=None)

        def cancel(job_id):
            job = store.cancel(job_id) if job_id else None
            return describe(store, job) if job else "no job to cancel"

        for button, box, state in ((profile_stop, profile_job, profile_state), (speak_stop, speak_job, speak_state), (dub_stop, dub_job, dub_state),
                                   (batch_stop, batch_job, batch_state), (evaluate_stop, evaluate_job, evaluate_state), (jobs_stop, picked, picked_state)):
            button.click(cancel, box, state, api_name="cancel" if button is jobs_stop else False)
        refresh.click(lambda: (choices(), choices()), None, [speak_profile, dub_profile], api_name=False)

        def show_job(job_id):
            job = store.get(job_id.strip()) if job_id else None
            return describe(store, job) if job else "no such job", result_files(job) or None

        def picked_row(event: gr.SelectData):
            row = event.row_value if hasattr(event, "row_value") else None
            return row[0] if row else gr.skip()

        picked_row.__annotations__ = {"event": gr.SelectData}  # a real class (this module's annotations are strings)

        jobs_table.select(picked_row, None, picked, api_name=False)
        picked.change(show_job, picked, [picked_state, picked_files], api_name=False)
        jobs_refresh.click(lambda: job_rows(store), None, jobs_table, api_name="jobs")
        timer = gr.Timer(2.0)
        timer.tick(lambda: job_rows(store), None, jobs_table, api_name=False, show_progress="hidden")

        def resume(memory):
            """A reloaded page: the state of the jobs this browser last started, and their results."""
            memory = memory or {}
            shown = {kind: store.get(job_id) for kind, job_id in memory.items()}
            profile, speak_, dub_, batch_, evaluate_ = (shown.get(kind) for kind in ("profile", "speak", "dub", "batch", "evaluate"))
            return (describe(store, profile), describe(store, speak_), video_of(speak_), video_of(speak_), describe(store, dub_), video_of(dub_),
                    describe(store, batch_), batch_rows(batch_), describe(store, evaluate_), evaluation_rows(evaluate_), *_report_images(evaluate_),
                    *(job.id if job else "" for job in (profile, speak_, dub_, batch_, evaluate_)), choices(), choices(), job_rows(store))

        page.load(resume, last, [profile_state, speak_state, speak_video, speak_file, dub_state, dub_result, batch_state, batch_table, evaluate_state, metrics, sheet, curves,
                                 profile_job, speak_job, dub_job, batch_job, evaluate_job, speak_profile, dub_profile, jobs_table], api_name=False)
    return page


def _report_images(job: Job | None) -> tuple:
    if job is None or job.state != DONE:
        return None, None
    folder = job.path("out/report")
    return tuple(str(folder / name) if (folder / name).is_file() else None for name in ("contact_sheet.png", "curves.png"))


def theme():
    """Gradio's default look with the system's fonts (its own fetch web fonts from Google)."""
    import gradio as gr

    local = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
    return gr.themes.Default(font=local, font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


def private_gradio(work: Path) -> None:
    """Gradio's analytics off and its uploads in WORK/uploads: set before gradio is imported."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(Path(work) / "uploads")


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None, ready=None) -> None:
    """Run the studio until interrupted. `ready(url)` is called once it listens."""
    private_gradio(settings.work)
    settings.work.mkdir(parents=True, exist_ok=True)
    settings.profiles.mkdir(parents=True, exist_ok=True)
    with JobStore(settings.work, settings.parallel) as store:
        page = build(settings, store)
        page.queue(default_concurrency_limit=None)
        _, url, _ = page.launch(
            server_name=host, server_port=port, auth=auth, prevent_thread_lock=True, quiet=True, show_error=True, ssr_mode=False,
            max_file_size=f"{settings.max_upload_mb}mb", allowed_paths=[str(settings.work / "jobs")], footer_links=[],
            theme=theme(), share=False, inbrowser=False,
        )
        if ready is not None:
            ready(url)
        try:
            while True:
                time.sleep(1)
        finally:
            page.close()
