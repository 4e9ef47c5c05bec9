"""finetune and speak end to end on the shipped real clip (shortened rules for a 3 s clip)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from talkface.config import FinetuneConfig, SpeakConfig
from talkface.errors import CacheError, ClipTooShortError, InputError
from talkface.finetune import finetune
from talkface.media import Audio, probe, read_frames, write_audio
from talkface.motion import load_motion
from talkface.profile import load_profile
from talkface.speak import speak

from .conftest import copy_files

SHORT_CLIP_RULES = FinetuneConfig(min_seconds=2.0, refiner=False)  # the shipped test clip is 3 s; refiner tests: tests/refine


@pytest.fixture(scope="module")
def profile(clip, tmp_path_factory):
    return finetune(clip, tmp_path_factory.mktemp("profile"), SHORT_CLIP_RULES)


@pytest.fixture(scope="module")
def speech(clip_audio, tmp_path_factory):
    return write_audio(tmp_path_factory.mktemp("speech") / "line.wav", clip_audio)


def test_finetune_writes_a_complete_profile(profile):
    folder = profile.folder
    for name in ("profile.json", "model.npz", "fit.npz", "motion.npz", "reference.png", "frames.npz", "mattes.npz", "eyes.npz", "mouth_patches.npz", "room.npz", "turn_gain.json"):
        assert (folder / name).exists(), name
    from talkface.render.frames import FrameStore, MatteStore

    assert len(MatteStore(folder / "mattes.npz")) == len(FrameStore(folder / "frames.npz")) == 75
    info = json.loads((folder / "profile.json").read_text())
    assert info["format"] == 3 and info["features"] == "mfcc+whisper"
    assert info["source"]["n_frames"] == 75 and info["generic"]["cross_validation"]["network"]["mean_r"] > 0.3
    assert -1 <= info["validation"]["mouth_r"] <= 1
    assert profile.reference_frame.shape == (450, 450, 3)


def test_rerun_resumes_from_cached_stages(clip, profile):
    folder = profile.folder
    stamps = {name: (folder / name).stat().st_mtime_ns for name in ("track.npz", "features_mfcc_whisper.npz", "turn_gain.json")}
    finetune(clip, folder, SHORT_CLIP_RULES)
    assert {name: (folder / name).stat().st_mtime_ns for name in stamps} == stamps


def test_an_interrupted_profile_is_not_loaded(profile, tmp_path):
    (tmp_path / "model.npz").write_bytes((profile.folder / "model.npz").read_bytes())
    with pytest.raises(InputError, match="not a finished profile"):
        load_profile(tmp_path)


def test_profile_from_another_version_is_refused(profile, tmp_path):
    copy_files(profile.folder, tmp_path)
    info = json.loads((tmp_path / "profile.json").read_text())
    (tmp_path / "profile.json").write_text(json.dumps({**info, "format": 0}))
    with pytest.raises(CacheError, match="finetune it again"):
        load_profile(tmp_path)


def test_short_clip_is_refused_before_any_work(clip, tmp_path):
    with pytest.raises(ClipTooShortError, match=r"3\.0 s long; finetuning needs at least 10 s"):
        finetune(clip, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_speak_makes_a_video_with_the_audio(profile, speech, tmp_path):
    motion_path = tmp_path / "m.npz"
    result = speak(speech, tmp_path / "out.mp4", profile, motion_path=motion_path)
    info = probe(result.video)
    assert (info.width, info.height, info.has_audio) == (450, 450, True)
    assert abs(info.duration - 3.0) < 0.1
    motion = load_motion(motion_path)
    assert motion.expression.shape == (75, profile.face.n_expression)
    assert motion.pose.shape == (75, 6) and motion.landmarks.shape == (75, 478, 3)
    assert np.isfinite(motion.landmarks).all()
    assert motion.pose[:, 1].std() > 0, "the head moves"
    # the spoken motion's landmarks are projected when read, and are what the motion file holds
    from talkface.face.model import FaceFit, project_landmarks

    made = result.motion.landmarks
    whole = project_landmarks(profile.face, FaceFit(result.motion.pose, result.motion.expression))
    assert made.shape == whole.shape and np.array_equal(np.asarray(made), whole)
    assert np.allclose(motion.landmarks, whole, atol=1e-3)
    assert np.array_equal(made[7], whole[7]) and np.array_equal(made[10:20:3, [1, 13], :2], whole[10:20:3, [1, 13], :2])


def test_the_mouth_comes_from_the_clip_and_a_profile_from_before_still_speaks(profile, speech, tmp_path):
    from talkface.face import topology
    from talkface.output import render_frames
    from talkface.render.mouth_patches import MouthPatches

    motion = speak(speech, tmp_path / "out.mp4", profile).motion
    older = load_profile(copy_files(profile.folder, tmp_path / "older"))
    (older.folder / "mouth_patches.npz").unlink()  # a profile made before the mouth patches
    index = int(np.argmax(topology.mouth_openness(motion.landmarks)))
    new, old = (list(render_frames(p, motion, refine=False))[index] for p in (profile, older))
    changed = np.abs(new.astype(int) - old).sum(2) > 24
    ys, xs = np.nonzero(changed)
    # where the frame shows the face: the motion's angles, seated where the chosen background's head is
    from talkface.face.model import FaceFit, project_landmarks
    from talkface.render.background import follow_indices, seat_head

    clip_pose = profile.clip_fit.pose.astype(np.float64)
    seated = seat_head(motion.pose.astype(np.float64), clip_pose, follow_indices(motion.pose, clip_pose, profile.clip_fit.valid))
    shown = project_landmarks(profile.face, FaceFit(seated.astype(np.float32), motion.expression))[index]
    lips = shown[topology.lip_indices(), :2]
    reach = MouthPatches.reach(float(np.linalg.norm(np.subtract(*topology.eye_centres(shown)))))
    assert changed.sum() > 100  # the opening shows the clip's mouth, not the texture's dark hole
    assert xs.min() >= lips[:, 0].min() - reach and xs.max() <= lips[:, 0].max() + reach
    assert ys.min() >= lips[:, 1].min() - reach and ys.max() <= lips[:, 1].max() + reach


def test_speak_is_deterministic_per_seed_and_replays_clip_pose(profile, speech, tmp_path):
    a = speak(speech, tmp_path / "a.mp4", profile, SpeakConfig(seed=1)).motion
    b = speak(speech, tmp_path / "b.mp4", profile, SpeakConfig(seed=1)).motion
    np.testing.assert_array_equal(a.pose, b.pose)
    clip_pose = speak(speech, tmp_path / "c.mp4", profile, SpeakConfig(pose="clip")).motion
    np.testing.assert_allclose(clip_pose.pose, profile.clip_fit.pose, atol=1e-6)


def test_speak_handles_one_second_and_uses_the_latest_profile(profile, clip_audio, tmp_path):
    short = write_audio(tmp_path / "one.wav", Audio(clip_audio.samples[:16000], 16000))
    result = speak(short, tmp_path / "one.mp4")  # no person: the latest finetuned profile
    assert result.n_frames == 25 and result.profile == profile.folder


def test_bad_audio_for_speak(profile, tmp_path):
    silent = write_audio(tmp_path / "silent.wav", Audio(np.zeros(32000, np.float32), 16000))
    with pytest.raises(InputError, match="silent"):
        speak(silent, tmp_path / "x.mp4", profile)
    with pytest.raises(InputError, match="not found"):
        speak(tmp_path / "missing.wav", tmp_path / "x.mp4", profile)
    assert not (tmp_path / "x.mp4").exists()


def test_cli_finetune_speak_and_track_person(clip, profile, speech, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "talkface", *args], capture_output=True, text=True, timeout=300)

    done = run("speak", "--audio", str(speech), "--person", str(profile.folder), "--out", str(tmp_path / "o.mp4"), "--pose", "clip")
    assert done.returncode == 0, done.stderr
    done = run("track", "--video", str(clip), "--person", str(profile.folder), "--save-motion", str(tmp_path / "t.npz"))
    assert done.returncode == 0, done.stderr
    motion = load_motion(tmp_path / "t.npz")
    assert motion.expression.shape[1] == profile.face.n_expression
    done = run("finetune", "--video", str(clip), "--out", str(tmp_path / "p"))
    assert done.returncode == 2 and "ClipTooShortError" in done.stderr
    done = run("speak", "--audio", str(speech), "--person", str(tmp_path / "none"), "--out", str(tmp_path / "o.mp4"))
    assert done.returncode == 2 and "no talkface profile" in done.stderr


def test_speak_streams_fragmented_mp4_to_stdout(profile, speech, tmp_path):
    """`--out -`: the video arrives on stdout in fragments as it is made, decodable from the
    pipe's bytes, with the summary line on stderr and nothing else on stdout."""
    import av

    done = subprocess.run(
        [sys.executable, "-m", "talkface", "speak", "--audio", str(speech), "--person", str(profile.folder), "--out", "-", "--pose", "clip"],
        capture_output=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()
    data = done.stdout
    assert data[4:8] == b"ftyp" and data.count(b"moof") >= 2  # fragmented: more than one fragment
    streamed = tmp_path / "streamed.mp4"
    streamed.write_bytes(data)
    with av.open(str(streamed)) as container:
        n_video = sum(1 for _ in container.decode(video=0))
    assert n_video == profile_frames_for(speech, profile)
    assert b"frames in" in done.stderr and not list(tmp_path.glob("*.partial"))
    # a file run gives the same frame count
    assert speak(speech, tmp_path / "file.mp4", profile, SpeakConfig(pose="clip")).n_frames == n_video


def test_a_reader_that_stops_early_ends_the_stream_in_one_line(profile, speech):
    """`--out - | head -c 2000`: the pipe closes mid-video; one line names it, exit 1, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "talkface", "speak", "--audio", str(speech), "--person", str(profile.folder), "--out", "-", "--pose", "clip"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    process.stdout.read(2000)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 1
    assert "closed it before the end" in err and "Traceback" not in err


def test_streaming_to_a_terminal_is_refused(profile, speech):
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "talkface", "speak", "--audio", str(speech), "--person", str(profile.folder), "--out", "-"],
            stdout=follower, stderr=subprocess.PIPE, timeout=120,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2 and b"terminal" in done.stderr and b"Traceback" not in done.stderr


def profile_frames_for(speech, profile) -> int:
    from talkface.audio import n_video_frames
    from talkface.media import load_audio

    return n_video_frames(load_audio(speech), profile.fps)


def test_blink_shape_moves_the_eyes_not_the_lips(profile):
    from talkface.face import topology
    from talkface.face.fit import landmark_basis
    from talkface.motion.blinks import eyes_only

    basis = landmark_basis(profile.face)
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(5, profile.face.n_expression))  # any mix of eye and mouth motion
    restricted = eyes_only(deltas, profile.face)
    moved = np.einsum("tk,knc->tnc", restricted, basis)
    wanted = np.einsum("tk,knc->tnc", deltas, basis)
    eyes, lips = topology.eye_indices(), topology.lip_indices()
    assert np.abs(moved[:, lips]).max() < 0.1 * np.abs(wanted[:, lips]).max()
    # most of the eye motion survives (eyes and lips are coupled in a 75-frame basis, so not all of it)
    kept = np.corrcoef(moved[:, eyes].ravel(), wanted[:, eyes].ravel())[0, 1]
    assert kept > 0.7


def test_a_long_video_is_finetuned_on_its_best_tracked_stretch(clip_frames, clip_audio, tmp_path):
    """Longer than max_seconds: tracked whole, then finetuned on the best-tracked stretch (the
    face is hidden in frames 0-34, so the best 1.5 s is frames 37-74)."""
    from talkface.media import write_video

    frames = [f.copy() for f in clip_frames]
    for frame in frames[:35]:
        frame[:] = frame[:60, :60].mean((0, 1)).astype(np.uint8)
    video = write_video(tmp_path / "long.mp4", frames, 25, clip_audio)
    rules = FinetuneConfig(min_seconds=0.5, max_seconds=1.5, refiner=False, min_tracked_fraction=0.9)
    profile = finetune(video, tmp_path / "p", rules)
    assert profile.info.source.n_frames == 38 and profile.info.source.path == str(video)
    assert probe(tmp_path / "p" / "sample.mp4").duration == pytest.approx(1.52, abs=0.05)
    assert profile.motion.validation  # the motion model was trained and validated on the stretch


def test_a_profile_with_damaged_or_no_mattes_still_turns_the_head(profile, speech, tmp_path):
    import shutil

    from talkface.controls import Controls

    for damage in ("cut", "gone"):  # and the measured turn gain (render/turn_gain.py) damaged or gone: turns as before
        folder = tmp_path / damage
        shutil.copytree(profile.folder, folder)
        mattes = folder / "mattes.npz"
        if damage == "cut":
            (folder / "turn_gain.json").write_text('{"format": 1, "positive": [1')
            mattes.write_bytes(mattes.read_bytes()[: mattes.stat().st_size // 2])
        else:
            mattes.unlink()
            (folder / "turn_gain.json").unlink()
        result = speak(speech, tmp_path / f"{damage}.mp4", folder, controls=Controls(yaw=10.0))
        assert result.n_frames == sum(1 for _ in read_frames(result.video))
