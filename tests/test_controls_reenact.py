"""Pose, mouth and background controls, and video-driven reenactment, on the shipped clips."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from talkface.config import FinetuneConfig, SpeakConfig
from talkface.controls import Controls, apply_controls, view_change
from talkface.errors import InputError
from talkface.evaluate.metrics import blink_frames, eye_openness
from talkface.face import topology
from talkface.face.model import project_landmarks
from talkface.finetune import finetune
from talkface.media import probe, read_frames, read_frames_at
from talkface.motion import Motion
from talkface.reenact import reenact
from talkface.render_motion import render
from talkface.render.backdrop import BackgroundReplacer, parse_colour
from talkface.speak import speak

from .conftest import DATA

RULES = FinetuneConfig(min_seconds=2.0, refiner=False)
OTHER = DATA / "other_person_2s.mp4"


@pytest.fixture(scope="module")
def profile(clip, tmp_path_factory):
    return finetune(clip, tmp_path_factory.mktemp("person"), RULES)


@pytest.fixture(scope="module")
def clip_motion(profile):
    fit = profile.clip_fit
    return Motion(fit.expression, fit.pose, project_landmarks(profile.face, fit), 25.0)


def test_pose_offsets_add_degrees_and_say_when_beyond_the_clip(profile, clip_motion):
    moved, notes = apply_controls(clip_motion, profile, Controls(yaw=4, pitch=-3))
    shift = np.degrees(moved.pose[:, :3] - clip_motion.pose[:, :3])
    assert np.allclose(shift[:, 0], -3, atol=1e-3) and np.allclose(shift[:, 1], 4, atol=1e-3)
    assert notes == []
    _, notes = apply_controls(clip_motion, profile, Controls(yaw=40))
    assert len(notes) == 1 and notes[0].startswith("yaw reaches") and "stretching" in notes[0]


def test_still_calmer_and_frontal_head(profile, clip_motion):
    still, _ = apply_controls(clip_motion, profile, Controls(pose_scale=0))
    assert np.ptp(still.pose, 0).max() < 1e-5
    calm, _ = apply_controls(clip_motion, profile, Controls(pose_scale=0.5))
    assert np.std(calm.pose[:, 1]) == pytest.approx(0.5 * np.std(clip_motion.pose[:, 1]), rel=0.02)
    frontal, _ = apply_controls(clip_motion, profile, Controls(frontal=True))
    assert np.abs(np.median(frontal.pose[:, :3], 0)).max() < 1e-6
    assert np.allclose(np.std(frontal.pose[:, :3], 0), np.std(clip_motion.pose[:, :3], 0), rtol=1e-3)


def test_mouth_scale_widens_the_mouth_and_leaves_the_eyes(profile, clip_motion):
    wider, _ = apply_controls(clip_motion, profile, Controls(mouth_scale=1.5))
    ratio = np.std(topology.mouth_openness(wider.landmarks)) / np.std(topology.mouth_openness(clip_motion.landmarks))
    assert 1.35 < ratio < 1.65
    before, after = eye_openness(clip_motion.landmarks), eye_openness(wider.landmarks)
    assert np.abs(after - before).max() < 0.1 * np.ptp(before)  # blinks and eye shape stay


@pytest.mark.parametrize("controls, message", [(Controls(pose_scale=-1), "pose-scale"), (Controls(mouth_scale=9), "mouth-scale"), (Controls(roll=90), "--roll 90")])
def test_out_of_range_controls_are_refused(controls, message):
    with pytest.raises(InputError, match=message):
        controls.check()


def test_colours_parse_and_bad_backgrounds_are_refused():
    assert parse_colour("green") == (0, 177, 64) and parse_colour("#ff0080") == (255, 0, 128) and parse_colour("1,2,3") == (1, 2, 3)
    assert parse_colour("nonsense") is None and parse_colour("300,0,0") is None
    with pytest.raises(InputError, match="neither a file nor a colour"):
        BackgroundReplacer("no-such-background.png", (64, 64))


def test_background_replacement_keeps_the_person(clip_frames, tmp_path):
    import cv2

    plate = np.zeros((450, 450, 3), np.uint8)
    plate[:, :, 2] = 255
    cv2.imwrite(str(tmp_path / "blue.png"), plate[..., ::-1])
    with BackgroundReplacer(str(tmp_path / "blue.png"), (450, 450)) as replace:
        frames = [replace(frame) for frame in clip_frames[:5]]
    last, original = frames[-1].astype(int), clip_frames[4].astype(int)
    assert np.abs(last[:60, :60] - [0, 0, 255]).max() <= 2  # top-left corner: background
    assert np.abs(last[200:260, 200:260] - original[200:260, 200:260]).mean() < 3  # the face


def test_speak_still_head_without_blinks_on_a_colour_background(profile, clip, tmp_path):
    result = speak(clip, tmp_path / "still.mp4", profile, SpeakConfig(pose="still", blink_rate=0), background="white")
    assert np.ptp(result.motion.pose, 0).max() < 1e-5
    assert blink_frames(eye_openness(result.motion.landmarks)) == []
    frame = read_frames_at(result.video, [10])[10].astype(int)
    assert np.abs(frame[:40, :40] - 255).mean() < 4


def test_reenact_transfers_another_persons_mouth_and_carries_their_audio(profile, tmp_path):
    result = reenact(OTHER, tmp_path / "re.mp4", profile, refine=False, motion_path=tmp_path / "m.npz")
    info = probe(result.video)
    assert info.has_audio and result.n_frames == 50 and (tmp_path / "m.npz").exists()
    assert result.motion.expression.shape == (50, profile.face.n_expression)
    moved = topology.mouth_openness(result.motion.landmarks)
    assert np.corrcoef(moved, result.driver_mouth_openness)[0, 1] > 0.7


def test_render_onto_redraws_the_face_in_place_and_skips_untracked_frames(profile, clip_motion, clip_frames):
    from talkface.evaluate.metrics import psnr
    from talkface.output import render_frames

    pose = clip_motion.pose.copy()
    pose[5] = np.nan
    motion = Motion(clip_motion.expression, pose, clip_motion.landmarks, 25.0)
    frames = list(render_frames(profile, motion, refine=False, onto=clip_frames[:10]))
    assert len(frames) == 10 and np.array_equal(frames[5], clip_frames[5])
    changed = np.abs(frames[6].astype(int) - clip_frames[6]).sum(-1) > 30
    # the frame's own skin is kept (render/composite.py); eyes and (without a refiner) the mouth are the
    # clip's own (render/eyes.py, render/mouth_patches.py): drawn onto its own clip, little changes
    assert 0 < changed.mean() < 0.03 and not changed[:50].any()
    lips = np.round(motion.landmarks[6][topology.lip_indices(), :2]).astype(int)
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
    assert psnr(frames[6][box], clip_frames[6][box]) > 28  # the mouth as it was, not the texture's


def test_reenact_can_replace_the_drivers_blinks(profile):
    from talkface.reenact import with_blinks

    fit = profile.clip_fit
    motion = Motion(fit.expression, fit.pose, project_landmarks(profile.face, fit), 25.0)
    calm = with_blinks(motion, profile, 0)
    assert blink_frames(eye_openness(calm.landmarks)) == []
    mouth = topology.mouth_openness
    assert np.corrcoef(mouth(calm.landmarks), mouth(motion.landmarks))[0, 1] > 0.99  # the mouth is untouched


def test_output_quality_is_chosen_and_a_bad_one_refused_before_any_work(profile, clip_motion, tmp_path):
    """--crf: 0 lossless and large, 40 small; every frame written either way. Out of range: refused before rendering."""
    from talkface.motion import save_motion

    motion_file = tmp_path / "m.npz"
    save_motion(motion_file, clip_motion)
    sizes = {}
    for crf in (0, 40):
        out = tmp_path / f"crf{crf}.mp4"
        assert render(motion_file, out, profile, refine=False, crf=crf).motion.n_frames == clip_motion.n_frames
        sizes[crf] = out.stat().st_size
        assert sum(1 for _ in read_frames(out)) == clip_motion.n_frames
    assert sizes[0] > 5 * sizes[40], sizes
    for bad in (-1, 52, 2.5, True):
        with pytest.raises(InputError, match="--crf"):
            render(motion_file, tmp_path / "bad.mp4", profile, crf=bad)
        with pytest.raises(InputError, match="--crf"):
            reenact(OTHER, tmp_path / "bad.mp4", profile, crf=bad)
    assert not (tmp_path / "bad.mp4").exists()
    done = subprocess.run([sys.executable, "-m", "talkface", "render", "--motion", str(motion_file), "--person", str(profile.folder),
                           "--out", str(tmp_path / "cli.mp4"), "--crf", "60"], capture_output=True, text=True)
    assert done.returncode != 0 and "--crf 60 is out of range" in done.stderr and "Traceback" not in done.stderr


def test_reenact_refuses_a_driver_without_a_face(profile, no_face_video, tmp_path):
    from talkface.errors import NoFaceError

    with pytest.raises(NoFaceError):
        reenact(no_face_video, tmp_path / "x.mp4", profile)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("command", ["speak", "render", "reenact"])
def test_help_documents_every_control(command):
    text = subprocess.run([sys.executable, "-m", "talkface", command, "--help"], capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    for option in ("--yaw", "--pitch", "--roll", "--pose-scale", "--frontal", "--mouth-scale", "--background", "--no-refine", "--crf"):
        assert option in text, option
    if command != "render":
        assert "--blink-rate" in text


def test_a_turned_view_turns_the_whole_head_while_the_clip_plays_on(profile, clip_motion):
    """--yaw 12 on the clip's own motion: the backgrounds are the frames the unturned motion
    plays (the room far from the head is theirs), and each one's head outline is turned with the
    face, so Face Mesh finds the outline at the cheeks moved with it."""
    from talkface.face.tracker import FaceMeshTracker
    from talkface.output import render_frames

    n = 12
    still = Motion(clip_motion.expression[:n], clip_motion.pose[:n], clip_motion.landmarks[:n], 25.0)
    turned, _ = apply_controls(still, profile, Controls(yaw=12))
    view = view_change(still, turned)
    assert view is not None and np.allclose(np.degrees(view[:, 1]), 12) and view_change(still, still) is None
    unturned = list(render_frames(profile, still, refine=False))
    whole = list(render_frames(profile, turned, refine=False, view=view))
    for k in range(n):
        np.testing.assert_array_equal(whole[k][:30, :30], unturned[k][:30, :30])  # the same clip frame, the room untouched
    with FaceMeshTracker() as tracker:
        points = {name: tracker.process(frames[n // 2])[0][:, 0] for name, frames in (("unturned", unturned), ("whole", whole))}
    shift = (points["whole"][[234, 454]] - points["unturned"][[234, 454]]).mean()
    # the cheeks' outline (behind the head's centre) moves with the turn (measured: 9-13 px; 4 px
    # when only the face turned, before the whole head was warped)
    assert abs(shift) > 6, shift


def test_turned_frames_are_made_in_their_own_thread_which_stops_with_the_render(profile, clip_motion, monkeypatch):
    """The heads are turned ahead of the compositing in a thread of their own: a render stopped
    after two frames leaves no thread running, and an error while turning a frame reaches the
    caller as that error, at that frame."""
    import threading

    from talkface.output import render_frames
    from talkface.render import headwarp

    n = 12
    still = Motion(clip_motion.expression[:n], clip_motion.pose[:n], clip_motion.landmarks[:n], 25.0)
    turned, _ = apply_controls(still, profile, Controls(yaw=12))
    view = view_change(still, turned)
    before = set(threading.enumerate())
    frames = render_frames(profile, turned, refine=False, view=view)
    next(frames), next(frames)
    assert any(t.name == "talkface-frames" for t in threading.enumerate())  # the turning thread, ahead
    frames.close()
    assert set(threading.enumerate()) <= before

    made = []

    def failing(self, frame, index, source_pose, target_pose):
        made.append(index)
        if len(made) == 3:
            raise RuntimeError("a frame that cannot be turned")
        return frame

    monkeypatch.setattr(headwarp.HeadWarper, "__call__", failing)
    got = []
    with pytest.raises(RuntimeError, match="cannot be turned"):
        for frame in render_frames(profile, turned, refine=False, view=view):
            got.append(frame)
    assert len(got) == 2 and set(threading.enumerate()) <= before
