"""`talkface studio`: the real server on a loopback port, driven through its API client (the
page's own endpoints), with real photo, audio and video; and its jobs stopped and interrupted."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from talkface.media import Audio, probe, read_frames, write_audio

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

DATA = Path(__file__).parent / "data"
PHOTO = DATA / "biden_portrait_320.jpg"
SPEAK_DEFAULTS = ("generated", 0, 1.0, -1, None, True, {})  # pose, yaw, mouth scale, blinks (-1: own rate), background, refine, browser state

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


class Studio:
    """A `talkface studio` process with its home and work folder."""

    def __init__(self, home: Path, work: Path, *options: str):
        self.home, self.work, self.options = home, work, options
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "Studio":
        port = free_port()
        environment = {**os.environ, "TALKFACE_HOME": str(self.home)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "talkface", "studio", "--port", str(port), "--work", str(self.work), *self.options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        )
        line = self.process.stdout.readline()  # "talkface studio on URL (...)" once it listens
        assert "talkface studio on" in line, (line, self.process.stderr.read() if self.process.poll() is not None else "")
        self.url = f"http://127.0.0.1:{port}/"
        return self

    def client(self) -> Client:
        return Client(self.url, verbose=False)

    def stop(self, signum=signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=60)

    def job(self, job_id: str) -> dict:
        return json.loads((self.work / "jobs" / job_id / "job.json").read_text())


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio")
    server = Studio(root / "home", root / "work").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory, clip_audio) -> Path:
    """2 s of the shipped clip's speech."""
    return write_audio(tmp_path_factory.mktemp("speech") / "two_seconds.wav", Audio(clip_audio.samples[: 2 * clip_audio.sample_rate], clip_audio.sample_rate))


@pytest.fixture(scope="module")
def photo_profile(studio) -> str:
    state, job_id, memory, speak_choices, _ = studio.client().predict(handle_file(str(PHOTO)), "draft", "biden", {}, api_name="/make_profile")
    assert "done" in state, state
    assert memory == {"profile": job_id}
    folders = [folder for _, folder in speak_choices["choices"]]
    assert folders == [str(studio.home / "profiles" / "biden")], "the new profile is offered for speaking"
    return folders[0]


def test_a_photo_and_two_seconds_of_speech_become_a_playable_video(studio, photo_profile, speech):
    state, video, download, job_id, _ = studio.client().predict(photo_profile, handle_file(str(speech)), *SPEAK_DEFAULTS, api_name="/speak")
    assert "done" in state, state
    made = Path(studio.job(job_id)["outputs"][0])
    assert made.parent == studio.work / "jobs" / job_id / "out", "the output stays in the job's own folder"
    info = probe(video)
    assert info.has_video and info.has_audio and (info.width, info.height) == (320, 320)
    assert abs(info.duration - 2.0) < 0.2
    frames = list(read_frames(video))
    assert len(frames) == 50 and np.std(frames[25]) > 10, "50 real frames, not a blank"
    assert Path(download).read_bytes() == made.read_bytes() == Path(video).read_bytes()


def test_two_tabs_speaking_at_once_get_their_own_videos(studio, photo_profile, speech):
    first, second = studio.client(), studio.client()  # two pages, each its own session
    jobs = [tab.submit(photo_profile, handle_file(str(speech)), *SPEAK_DEFAULTS, api_name="/speak") for tab in (first, second)]
    results = [job.result(timeout=300) for job in jobs]
    assert all("done" in state for state, *_ in results)
    outputs = [studio.job(result[3])["outputs"][0] for result in results]
    assert outputs[0] != outputs[1] and all(Path(path).is_file() for path in outputs)


@pytest.mark.parametrize(
    "case, message",
    [
        ("text as video", "not a readable video or audio file"),
        ("empty audio", "empty (0 bytes)"),
        ("two-hour video", "2 h 00 min long"),
        ("no profile", "no profile chosen"),
    ],
)
def test_a_bad_upload_gets_the_page_message_and_the_server_runs_on(studio, tmp_path, speech, case, message):
    client = studio.client()
    if case == "text as video":
        text = tmp_path / "notes.mp4"
        text.write_text("these are my notes, not a video\n" * 20)
        call = lambda: client.predict(handle_file(str(text)), "draft", "", {}, api_name="/make_profile")  # noqa: E731
    elif case == "empty audio":
        empty = tmp_path / "empty.wav"
        empty.write_bytes(b"")
        call = lambda: client.predict(str(studio.home / "profiles" / "biden"), handle_file(str(empty)), *SPEAK_DEFAULTS, api_name="/speak")  # noqa: E731
    elif case == "two-hour video":
        long_video = two_hour_video(tmp_path / "long.mp4")
        call = lambda: client.predict(handle_file(str(long_video)), handle_file(str(speech)), None, 1.0, True, {}, api_name="/dub")  # noqa: E731
    else:
        call = lambda: client.predict(None, handle_file(str(speech)), *SPEAK_DEFAULTS, api_name="/speak")  # noqa: E731
    with pytest.raises(AppError, match=re.escape(message)):
        call()
    assert studio.process.poll() is None, "the server keeps running"
    assert client.predict(api_name="/jobs") is not None


def test_a_photo_without_a_face_ends_its_job_with_the_reason(studio, tmp_path):
    import cv2

    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((240, 320, 3), (90, 140, 200), np.uint8))
    state, job_id, *_ = studio.client().predict(handle_file(str(wall)), "draft", "wall", {}, api_name="/make_profile")
    assert "failed" in state and "face" in state.lower(), state
    assert not (studio.home / "profiles" / "wall").exists(), "no half-made profile is left"
    assert studio.process.poll() is None


def two_hour_video(path: Path) -> Path:
    """A 64x64 video whose second frame shows two hours in (a 2-KB file two hours long)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 25)
        for pts in (0, 7200 * 25):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _running_with_progress(studio: Studio, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = studio.job(job_id)
        progress = studio.work / "jobs" / job_id / "progress.jsonl"
        if job["state"] == "running" and progress.exists() and '"rendering' in progress.read_text():
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never started rendering: {studio.job(job_id)}")


def _job_of(pending, timeout: float = 60) -> str:
    """The id of the job a submitted /speak_live call started (its first update carries it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        updates = pending.outputs()
        if updates and updates[0][3]:
            return updates[0][3]
        time.sleep(0.2)
    raise AssertionError(f"no job started: {pending.status()}")


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory, clip_audio) -> Path:
    """40 s of speech (the clip's, repeated): a job that runs long enough to be stopped."""
    return write_audio(tmp_path_factory.mktemp("long") / "forty_seconds.wav", Audio(np.tile(clip_audio.samples, 14), clip_audio.sample_rate))


def test_cancel_stops_a_running_job_and_leaves_no_output(studio, photo_profile, long_speech):
    client = studio.client()
    pending = client.submit(photo_profile, handle_file(str(long_speech)), *SPEAK_DEFAULTS, api_name="/speak_live")  # streamed: its first update names the job
    job_id = _job_of(pending)
    job = _running_with_progress(studio, job_id)
    client.predict(job_id, api_name="/cancel")
    state = pending.result(timeout=120)[0]
    assert "cancelled" in state, state
    finished = studio.job(job_id)
    assert finished["state"] == "cancelled"
    out = studio.work / "jobs" / job_id / "out"
    assert list(out.iterdir()) == [], "no output and no temporary left"
    with pytest.raises(ProcessLookupError):
        os.kill(job["pid"], 0)


def test_killing_the_server_mid_job_leaves_no_output_and_a_restart_lists_the_finished_jobs(tmp_path, speech, long_speech):
    server = Studio(tmp_path / "home", tmp_path / "work").start()
    try:
        client = server.client()
        _, profile_job, *_ = client.predict(handle_file(str(PHOTO)), "draft", "biden", {}, api_name="/make_profile")
        folder = str(server.home / "profiles" / "biden")
        _, _, _, done_job, _ = client.predict(folder, handle_file(str(speech)), *SPEAK_DEFAULTS, api_name="/speak")
        running = _job_of(client.submit(folder, handle_file(str(long_speech)), *SPEAK_DEFAULTS, api_name="/speak_live"))
        job = _running_with_progress(server, running)
        server.stop(signal.SIGKILL)  # no clean-up by the server at all
        deadline = time.monotonic() + 60
        while _alive(job["pid"]) and time.monotonic() < deadline:  # the command follows its server (PR_SET_PDEATHSIG)
            time.sleep(0.2)
        assert not _alive(job["pid"]), "the command did not outlive its server"
        out = server.work / "jobs" / running / "out"
        assert list(out.iterdir()) == [], "no output and no temporary left"

        server.start()
        rows = {row[0]: row[2] for row in server.client().predict(api_name="/jobs")["data"]}
        assert rows[profile_job] == "done" and rows[done_job] == "done"
        assert rows[running] == "interrupted"
        assert "stopped while this job ran" in server.job(running)["message"]
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--host", "0.0.0.0"], "--host 0.0.0.0 opens the studio to other machines: give --auth USER:PASS"),
        (["--host", "0.0.0.0", "--auth", "ana"], "--auth takes USER:PASS"),
        (["--port", "0"], "is not a port"),
    ],
)
def test_the_studio_refuses_an_open_or_bad_address_in_one_line(arguments, message):
    result = subprocess.run([sys.executable, "-m", "talkface", "studio", *arguments], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "talkface", "studio", "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_a_batch_runs_its_rows_and_shows_their_states(studio, photo_profile, speech, tmp_path):
    manifest = tmp_path / "lines.csv"
    manifest.write_text(f"person,audio,out\n{photo_profile},two_seconds.wav,said.mp4\n{photo_profile},missing.wav,never.mp4\n")
    state, rows, files, job_id, _ = studio.client().predict(handle_file(str(manifest)), [handle_file(str(speech))], {}, api_name="/batch")
    assert "done" in state, state  # the batch ran; one row of it failed
    table = {row[3]: row[4] for row in rows["data"]}
    assert table == {"said.mp4": "done", "never.mp4": "failed"}
    names = sorted(Path(path).name for path in files)
    assert names == ["report.json", "said.mp4"]
    assert probe(next(path for path in files if path.endswith("said.mp4"))).has_audio


def test_evaluate_shows_the_metrics_and_the_report_pictures(studio, photo_profile, speech):
    client = studio.client()
    _, video, *_ = client.predict(photo_profile, handle_file(str(speech)), *SPEAK_DEFAULTS, api_name="/speak")
    state, metrics, sheet, curves, job_id, _ = client.predict(handle_file(video), None, {}, api_name="/evaluate")
    assert "done" in state, state
    names = {row[0] for row in metrics["data"]}
    assert any("sync" in name or "offset" in name for name in names), names
    assert Path(sheet).stat().st_size > 1000 and Path(curves).stat().st_size > 1000


def test_an_upload_over_the_limit_is_refused_and_nothing_is_kept(tmp_path):
    server = Studio(tmp_path / "home", tmp_path / "work", "--max-upload", "1").start()
    try:
        big = tmp_path / "big.mp4"
        big.write_bytes(os.urandom(3 << 20))
        with pytest.raises(Exception, match="(?i)(too large|size|exceed)"):
            server.client().predict(handle_file(str(big)), "draft", "", {}, api_name="/make_profile")
        assert server.process.poll() is None
        kept = [path for path in (server.work / "uploads").rglob("*") if path.is_file()] if (server.work / "uploads").exists() else []
        assert not any(path.stat().st_size >= 1 << 20 for path in kept), "the large upload is not stored"
        assert not list((server.work / "jobs").iterdir())
    finally:
        server.stop()
