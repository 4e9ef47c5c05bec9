"""The `talkface` command as a user runs it: JSON output, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TALKFACE_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "talkface", *args], capture_output=True, text=True, env=env, timeout=300)


def test_track_json(clip, tmp_path):
    motion = tmp_path / "motion.npz"
    done = run("track", "--video", str(clip), "--out", str(tmp_path / "t"), "--json", "--save-motion", str(motion))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    for key in ("n_frames", "n_tracked", "fps", "mean_reprojection_px", "gaps"):
        assert key in summary
    assert summary["n_frames"] == summary["n_tracked"] == 75 and summary["fps"] == 25
    assert summary["mean_reprojection_px"] <= 1.5
    assert motion.exists()
    assert done.stderr == "", "native library noise must not reach the user"


@pytest.mark.parametrize(
    "make, code, message",
    [
        (lambda d, f: d / "missing.mp4", 2, "InputError: file not found"),
        (lambda d, f: (d / "t.mp4").write_text("hello") and d / "t.mp4", 2, "InputError: cannot read"),
        (lambda d, f: f["no_face"], 2, "NoFaceError: no face found"),
        (lambda d, f: f["two_faces"], 2, "MultipleFacesError: two faces of similar size in frames 0-19"),
    ],
)
def test_errors_are_one_line_with_exit_codes(tmp_path, no_face_video, two_faces_video, make, code, message):
    video = make(tmp_path, {"no_face": no_face_video, "two_faces": two_faces_video})
    done = run("track", "--video", str(video), "--out", str(tmp_path / "o"))
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3  # one message, perhaps wrapped


def test_audio_only_input_names_the_missing_stream(tmp_path, clip_audio):
    from talkface.media import write_audio

    path = write_audio(tmp_path / "speech.wav", clip_audio)
    done = run("track", "--video", str(path), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "NoVideoStreamError" in done.stderr


def test_doctor_reports_the_installation():
    done = run("doctor", "--json")
    assert done.returncode == 0, done.stdout
    report = json.loads(done.stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert report["ok"]
    assert names["face tracker model"]["ok"]
    assert names["generic lip model"]["ok"] and "61 clips" in names["generic lip model"]["detail"]
    assert names["photo profile models"]["ok"] and "59 clips" in names["photo profile models"]["detail"]
    assert names["generic refiner"]["ok"] and "on 51 clips" in names["generic refiner"]["detail"]
    assert "libx264" in names["ffmpeg (PyAV)"]["detail"]
    assert names["device"]["ok"]


def test_help_lists_commands():
    done = run("--help")
    assert done.returncode == 0 and "track" in done.stdout and "doctor" in done.stdout


def test_profile_is_another_name_for_person(tmp_path):
    """`finetune --out FOLDER` makes a profile: the commands that use one take it as --profile too
    (it was `No such option: --profile`)."""
    for command in ("speak", "render", "reenact", "dub"):
        assert "--profile" in run(command, "--help").stdout
    done = run("speak", "--profile", str(tmp_path / "nobody"), "--audio", str(tmp_path / "a.wav"), "--out", str(tmp_path / "o.mp4"))
    assert done.returncode == 2 and "no talkface profile at" in done.stderr and "No such option" not in done.stderr
