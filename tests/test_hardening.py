"""Bad inputs and outputs end in a typed error before any work: made here, never shipped as blobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from talkface.errors import InputError, ProfileError
from talkface.media import Audio, check_destination, load_audio, probe, read_frames, write_audio, write_video
from talkface.media.destination import partial_path, remove_stale_partials
from talkface.motion.io import Motion, load_motion, save_motion
from talkface.profile import load_profile
from talkface.storage import save_npz

from .bad_media import faststart_copy, float_wav
from .conftest import copy_files


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TALKFACE_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "talkface", *args], capture_output=True, text=True, env=env, timeout=300, **kwargs)


# ---------------------------------------------------------------- media
def test_a_pipe_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "speech.wav"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(InputError, match="not a regular file"):
        load_audio(fifo)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_audio_with_non_finite_samples_is_refused(tmp_path, clip_audio, bad):
    samples = clip_audio.samples.copy()
    samples[1000:1010] = bad
    path = float_wav(tmp_path / "broken.wav", samples)
    with pytest.raises(InputError, match="not numbers"):
        load_audio(path)


def test_finite_float_wav_still_loads(tmp_path, clip_audio):
    path = float_wav(tmp_path / "fine.wav", clip_audio.samples)
    assert abs(load_audio(path).duration - clip_audio.duration) < 0.05


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.4])
def test_truncated_video_is_a_clear_error_or_shorter_clip(tmp_path, clip, fraction):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    try:
        frames = list(read_frames(cut))
    except InputError as exc:
        assert str(cut) in str(exc)
    else:
        assert len(frames) < 75


def test_empty_wav_header_only(tmp_path):
    path = tmp_path / "empty.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
    try:
        audio = load_audio(path)
    except InputError:
        return
    assert audio.duration == 0


# ---------------------------------------------------------------- outputs
def test_destination_checks(tmp_path, clip):
    with pytest.raises(InputError, match="is a folder"):
        check_destination(tmp_path)
    with pytest.raises(InputError, match="bytes long"):
        check_destination(tmp_path / ("x" * 300 + ".mp4"))
    with pytest.raises(InputError, match="also an input"):
        check_destination(clip, (clip,))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_destination(blocker / "sub" / "out.mp4")
    assert check_destination(tmp_path / "new" / "deeper" / "out.mp4") == tmp_path / "new" / "deeper" / "out.mp4"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_destination_unwritable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(InputError, match="permission denied"):
        check_destination(locked / "out.mp4")


def test_partials_are_unique_and_stale_ones_removed(tmp_path):
    out = tmp_path / "out.mp4"
    first, second = partial_path(out), partial_path(out)
    assert first != second and first.parent == tmp_path and first.name.startswith(".out.mp4.")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.mp4.{dead.pid}-0123abcd.partial"
    live = tmp_path / f".out.mp4.{os.getpid()}-0123abcd.partial"
    other = tmp_path / f".other.mp4.{dead.pid}-0123abcd.partial"
    for path in (stale, live, other):
        path.write_bytes(b"x")
    assert remove_stale_partials(out) == [stale]
    assert live.exists() and other.exists() and not stale.exists()
    stale.write_bytes(b"x")  # a run killed before: the next command's first check clears it
    assert check_destination(out) == out and not stale.exists() and live.exists() and other.exists()


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    def frames():
        yield np.zeros((64, 64, 3), np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "out.mp4", frames())
    assert list(tmp_path.iterdir()) == []


def test_speak_refuses_to_overwrite_its_audio_before_work(tmp_path, clip_audio):
    speech = write_audio(tmp_path / "line.wav", clip_audio)
    before = speech.read_bytes()
    done = run("speak", "--audio", str(speech), "--out", str(speech), "--person", str(tmp_path / "none"))
    assert done.returncode == 2 and "also an input" in done.stderr
    assert speech.read_bytes() == before


def test_sigterm_removes_the_partial_output(tmp_path):
    script = (
        "import numpy as np, time\n"
        "from talkface.cli import _terminated\n"
        "import signal; signal.signal(signal.SIGTERM, _terminated)\n"
        "from talkface.media import write_video\n"
        "def frames():\n"
        "    while True:\n"
        "        time.sleep(0.01)\n"
        "        yield np.zeros((64, 64, 3), np.uint8)\n"
        f"write_video({str(tmp_path / 'out.mp4')!r}, frames())\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.mp4.*.partial")) and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 143
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- messages
def test_paths_with_brackets_are_not_markup(tmp_path):
    weird = tmp_path / "[/]odd[bold]name.wav"
    done = run("speak", "--audio", str(weird), "--out", str(tmp_path / "o.mp4"), "--person", str(tmp_path))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr
    assert "[/]odd[bold]name.wav" in done.stderr or "no talkface profile" in done.stderr


def test_version():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("talkface ")


# ---------------------------------------------------------------- motion files
def _motion(n: int = 10, fps: float = 25.0) -> Motion:
    rng = np.random.default_rng(0)
    return Motion(rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 6)).astype(np.float32), rng.normal(size=(n, 478, 3)).astype(np.float32), fps)


def test_motion_round_trip_with_faceless_frames(tmp_path):
    motion = _motion()
    motion.pose[3] = np.nan
    motion.expression[3] = np.nan
    motion.landmarks[3] = np.nan
    loaded = load_motion(save_motion(tmp_path / "m.npz", motion))
    assert loaded.n_frames == 10 and np.isnan(loaded.pose[3]).all()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda a: {**a, "fps": np.float32(np.nan)}, "frames/s"),
        (lambda a: {**a, "fps": np.float32(0)}, "frames/s"),
        (lambda a: {**a, "fps": np.float32(1e9)}, "frames/s"),
        (lambda a: {**a, "fps": np.float32(-25)}, "frames/s"),
        (lambda a: {k: v[:0] if k != "fps" else v for k, v in a.items()}, "0 frames"),
        (lambda a: {**a, "pose": np.where(np.arange(6) == 2, np.inf, a["pose"]).astype(np.float32)}, "infinite"),
        (lambda a: {**a, "expression": np.where(np.arange(4) == 1, np.nan, a["expression"]).astype(np.float32)}, "NaN"),
        (lambda a: {**a, "pose": np.full_like(a["pose"], np.nan), "expression": np.full_like(a["expression"], np.nan), "landmarks": np.full_like(a["landmarks"], np.nan)}, "no frame with a face"),
        (lambda a: {**a, "expression": np.array(["x"] * 10)}, "not numbers|not \\(T, K\\)"),
        (lambda a: {k: v for k, v in a.items() if k != "landmarks"}, "missing landmarks"),
    ],
)
def test_damaged_motion_files_are_refused(tmp_path, damage, message):
    motion = _motion()
    arrays = {"expression": motion.expression, "pose": motion.pose, "landmarks": motion.landmarks, "fps": np.float32(25)}
    path = tmp_path / "m.npz"
    save_npz(path, **damage(arrays))
    with pytest.raises(InputError, match=message):
        load_motion(path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_garbage_motion_files_are_refused(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(InputError):
        load_motion(path)


def test_zip_bomb_motion_file_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("landmarks.npy", "w", force_zip64=True) as member:
            header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.float32))
            header["shape"] = (32 << 22,)
            np.lib.format.write_array_header_1_0(member, header)
            chunk = bytes(1 << 24)
            for _ in range(32):  # 512 MiB of zeros in 0.5 MB: past the 200:1 ratio real array files stay under
                member.write(chunk)
    assert path.stat().st_size < 64 << 20
    with pytest.raises(InputError, match="inflate"):
        load_motion(path)


# ---------------------------------------------------------------- profiles
@pytest.fixture(scope="module")
def small_profile(clip, tmp_path_factory):
    from talkface.config import FinetuneConfig
    from talkface.finetune import finetune

    return finetune(clip, tmp_path_factory.mktemp("profile"), FinetuneConfig(min_seconds=2.0, refiner=False))


@pytest.mark.parametrize(
    "name, content",
    [
        ("profile.json", b"{not json"),
        ("profile.json", b"[1, 2]"),
        ("profile.json", b"\xff\xfe\x00"),
        ("motion.npz", b"garbage"),
        ("motion.npz", None),
        ("fit.npz", b""),
        ("reference.png", b"no image"),
        ("model.npz", b"PK\x03\x04"),
    ],
)
def test_damaged_profile_is_one_profile_error(small_profile, tmp_path, name, content):
    copy_files(small_profile.folder, tmp_path)
    if content is None:
        (tmp_path / name).unlink()
    else:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ProfileError, match="finetune"):
        load_profile(tmp_path)


def test_damaged_profile_from_the_cli_is_one_line(small_profile, tmp_path, clip_audio):
    copy_files(small_profile.folder, tmp_path / "p")
    (tmp_path / "p" / "motion.npz").write_bytes(b"garbage")
    speech = write_audio(tmp_path / "line.wav", clip_audio)
    done = run("speak", "--audio", str(speech), "--out", str(tmp_path / "o.mp4"), "--person", str(tmp_path / "p"))
    assert done.returncode == 2 and "ProfileError" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


# ---------------------------------------------------------------- batch manifests and options
@pytest.mark.parametrize(
    "name, content, message",
    [
        ("jobs.csv", "person,audio,out\np,a.wav,o.mp4\n".encode("utf-16"), "not UTF-8"),
        ("jobs.csv", bytes(range(256)) * 4, "not UTF-8|NUL"),
        ("jobs.csv", b"person,audio,out\np,a.wav,o.mp4\x00\n", "NUL"),
        ("jobs.csv", b"person,audio,out\np,a.wav,o.mp4,extra,more\n", "more fields than the header"),
        ("jobs.csv", b"person,audio,out,seed\np,a.wav,o.mp4,-1\n", "row 1: seed -1"),
        ("jobs.csv", b"person,audio,out,blink_rate\np,a.wav,o.mp4,nan\n", "row 1: blink rate nan"),
        ("jobs.csv", b"person,audio,out,blink_rate\np,a.wav,o.mp4,1e9\n", "blink rate"),
        ("jobs.csv", b"person,audio,out,pose\np,a.wav,o.mp4,wild\n", "unknown pose mode"),
        ("jobs.jsonl", b'{"person": "p", "audio": "a.wav", "out": "o.mp4", "seed": [1]}\n', "seed"),
        ("jobs.jsonl", b'{"person": "p", "audio": "a.wav", "out": "o.mp4", "seed": 1e40}\n', "seed"),
        ("jobs.jsonl", b"[1, 2]\n", "expected an object"),
        ("jobs.csv", b"", "no jobs"),
    ],
)
def test_bad_manifests_are_one_clear_error(tmp_path, name, content, message):
    from talkface.batch.manifest import read_manifest

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        jobs = read_manifest(path)  # a file that is no manifest, or one whose one row cannot run
        assert len(jobs) == 1 and jobs[0].problem
        raise InputError(jobs[0].problem)


def test_batch_with_a_failed_row_reports_it_and_exits_1(tmp_path, clip):
    """The row's problem is in the table; the exit status says a row failed; no 'internal error'."""
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"person,audio,out\n{tmp_path / 'nobody'},{clip},{tmp_path / 'o.mp4'}\n")
    result = run("batch", str(manifest))
    assert result.returncode == 1, result.stderr
    job = json.loads((tmp_path / "jobs.csv.report.json").read_text())["jobs"][0]
    assert job["status"] == "failed" and "no such person" in job["error"]
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_a_pipe_as_manifest_is_refused(tmp_path):
    from talkface.batch.manifest import read_manifest

    fifo = tmp_path / "jobs.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_manifest(fifo)


@pytest.mark.parametrize(
    "settings, message",
    [({"seed": -1}, "seed"), ({"seed": 2**40}, "seed"), ({"seed": True}, "seed"), ({"blink_rate": float("nan")}, "blink rate"),
     ({"blink_rate": -3.0}, "blink rate"), ({"pose": "spin"}, "pose mode"), ({"crf": -1}, "crf"), ({"crf": 52}, "crf"),
     ({"crf": True}, "crf"), ({"crf": 18.5}, "crf"), ({"crf": "18"}, "crf")],
)
def test_speak_settings_out_of_range(settings, message):
    from talkface.config import SpeakConfig

    with pytest.raises(InputError, match=message):
        SpeakConfig(**settings).check()
    assert SpeakConfig(seed=7, blink_rate=0.0).check().seed == 7


@pytest.mark.parametrize("fraction", [0.4, 0.7])
def test_a_cut_faststart_video_is_called_truncated(tmp_path, clip, fraction):
    whole = faststart_copy(clip, tmp_path / "whole.mp4")
    assert len(list(read_frames(whole))) == 75
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * fraction)])
    with pytest.raises(InputError, match="cut short|could not be decoded"):
        list(read_frames(cut))
