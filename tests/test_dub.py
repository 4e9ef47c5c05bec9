"""`talkface dub` end to end on the shipped clips: real tracking, rendering and encoding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from talkface.config import DubConfig, FinetuneConfig
from talkface.dub import assign_slots, dub, source_frames
from talkface.errors import InputError, NoAudioStreamError
from talkface.face import topology
from talkface.face.model import place_vertices
from talkface.media import Audio, probe, read_frames, write_audio, write_video

from .bad_media import float_wav
from .conftest import DATA

SHORT = FinetuneConfig(min_seconds=2.0, refiner=False)  # the shipped clip is 3 s
MOUTH = (slice(280, 360), slice(170, 290))  # rows, columns around the lips in obama_3s
ABOVE_NOSE = slice(0, 240)  # rows above the nose tip in every frame of obama_3s


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-12)))


@pytest.fixture(scope="module")
def person(clip, tmp_path_factory):
    from talkface.finetune import finetune

    return finetune(clip, tmp_path_factory.mktemp("dub-person"), SHORT)


@pytest.fixture(scope="module")
def speech(clip_audio, tmp_path_factory):
    """5 s of speech: the clip's own sound, reversed (different mouth motion), then forwards."""
    samples = np.concatenate([clip_audio.samples[::-1], clip_audio.samples])[: 5 * clip_audio.sample_rate]
    return write_audio(tmp_path_factory.mktemp("dub-speech") / "speech.wav", Audio(samples, clip_audio.sample_rate))


# -- which frame each output frame shows ------------------------------------------------------
def test_pingpong_never_jumps_and_covers_the_audio():
    cuts = np.zeros(10, bool)
    cuts[0] = True
    sources, jumps = source_frames(10, 40, "pingpong", cuts)
    assert len(sources) == 40 and sources.min() == 0 and sources.max() == 9
    assert (np.abs(np.diff(sources)) == 1).all() and jumps.sum() == 1  # only the start
    assert list(sources[8:12]) == [8, 9, 8, 7]


def test_loop_jump_is_a_cut_and_hold_stays():
    cuts = np.zeros(10, bool)
    cuts[[0, 6]] = True
    sources, jumps = source_frames(10, 25, "loop", cuts)
    assert list(sources[8:12]) == [8, 9, 0, 1] and jumps[10] and jumps[6] and jumps[16]
    sources, _ = source_frames(10, 15, "hold", cuts)
    assert list(sources[-6:]) == [9] * 6
    sources, _ = source_frames(10, 4, "pingpong", cuts)  # shorter audio: the video is cut
    assert list(sources) == [0, 1, 2, 3]


def test_a_cut_crossed_backwards_is_a_new_shot():
    cuts = np.zeros(10, bool)
    cuts[[0, 5]] = True
    sources, jumps = source_frames(10, 18, "pingpong", cuts)
    # forwards 4 -> 5 crosses the cut at 5; backwards 5 -> 4 (frames 13 -> 14) crosses it again
    assert jumps[5] and jumps[14] and jumps.sum() == 3


# -- the whole dub ----------------------------------------------------------------------------
def test_dub_redraws_the_mouth_and_keeps_the_rest(clip, clip_frames, person, speech, tmp_path):
    out = tmp_path / "dubbed.mp4"
    result = dub(clip, speech, out, person, DubConfig(refine=False), device="cpu")
    assert probe(out).duration == pytest.approx(5.0, abs=0.1) and probe(out).has_audio
    frames = list(read_frames(out))
    assert len(frames) == result.n_frames == 125 and result.dubbed_frames == 125
    sources, _ = source_frames(len(clip_frames), len(frames), "pingpong", np.eye(1, len(clip_frames), dtype=bool)[0])
    above = np.mean([psnr(f[ABOVE_NOSE], clip_frames[s][ABOVE_NOSE]) for f, s in zip(frames, sources)])
    mouth = np.mean([psnr(f[MOUTH], clip_frames[s][MOUTH]) for f, s in zip(frames, sources)])
    assert above > 38, f"the upper face and background changed: {above:.1f} dB"
    assert mouth < above - 6, f"the mouth was not redrawn: {mouth:.1f} dB against {above:.1f} dB above the nose"
    # the redrawn mouth follows the new audio: it moves, and differently from the original
    opening = [f[MOUTH][30:60, 40:80].mean() for f in frames]
    assert np.std(opening) > 1.0


def test_the_redrawn_lower_face_is_the_frames_own_skin_away_from_the_lips(clip, clip_frames, person):
    """Redrawn with the frame's own mouth, the lower face comes back as it was beside and under
    the lips: the frame's own skin moved through the mesh (here not moved at all), not the
    profile's median texture (a smooth chin and folds)."""
    from talkface.dub import _LowerFaceRenderer
    from talkface.media.video import FrameSource

    fit = person.clip_fit
    n = 40
    renderer = _LowerFaceRenderer(person, fit, fit.expression[:n], np.arange(n), np.eye(1, n, dtype=bool)[0], np.ones(n, bool), False, "cpu")
    landmarks = person.face.landmark_index
    scores = []
    for i, (frame, drawn) in enumerate(renderer._coarse(FrameSource(clip), 0, n)):
        points = place_vertices(person.face, fit.expression[i], fit.pose[i])[landmarks]
        lips = cv2.convexHull(np.round(points[list(topology.lip_indices()), :2]).astype(np.int32))
        skin = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillConvexPoly(skin, cv2.convexHull(np.round(points[points[:, 1] > points[1, 1], :2]).astype(np.int32)), 1)
        grow = int(0.1 * np.ptp(points[:, 0]))
        around = np.zeros_like(skin)
        cv2.fillConvexPoly(around, lips, 1)
        skin[cv2.dilate(around, np.ones((2 * grow + 1,) * 2, np.uint8)) > 0] = 0
        scores.append(psnr(drawn[0][skin > 0], frame[skin > 0]))
    assert np.median(scores) > 40, f"the lower face beside the lips: {np.median(scores):.1f} dB against the frame's own"


def test_frames_without_a_face_pass_through(clip, gappy_video, person, speech, tmp_path):
    out = tmp_path / "gappy.mp4"
    dub(gappy_video, speech, out, person, DubConfig(refine=False, fit="hold", crf=0), device="cpu")
    frames, source = list(read_frames(out)), list(read_frames(gappy_video))
    hidden = range(30, 50)  # the long gap: no face to redraw
    assert min(psnr(frames[i], source[i]) for i in hidden) > 45  # lossless output: only YUV rounding
    assert max(psnr(frames[i][MOUTH], source[i][MOUTH]) for i in range(60, 75)) < 40  # the face is back: dubbed
    assert all(np.array_equal(frames[i], frames[74]) for i in range(75, 125)) or np.mean(
        [psnr(frames[i][ABOVE_NOSE], frames[74][ABOVE_NOSE]) for i in range(75, 125)]
    ) > 38  # hold: the last frame, with only the mouth moving


def test_another_persons_shot_passes_through_and_cuts_are_found(clip_frames, person, speech, tmp_path):
    other = [cv2.resize(f, (450, 450)) for f in read_frames(DATA / "other_person_2s.mp4")]
    video = write_video(tmp_path / "two_shots.mp4", [*clip_frames[:50], *other[:40], *clip_frames[50:]])
    out = tmp_path / "two_shots_dubbed.mp4"
    result = dub(video, speech, out, person, DubConfig(refine=False, fit="hold", crf=0), device="cpu")
    assert result.shots == 3
    frames, source = list(read_frames(out)), list(read_frames(video))
    assert min(psnr(frames[i], source[i]) for i in range(50, 90)) > 45  # the other person: untouched
    assert np.mean([psnr(frames[i][MOUTH], source[i][MOUTH]) for i in range(0, 50)]) < 36  # Obama: dubbed


def _face_at(x: float, y: float, width: float) -> np.ndarray:
    """A stand-in landmark set: a square face of `width` centred at (x, y)."""
    corners = np.array([[-1, -1, 0], [1, 1, 0]], np.float32) * width / 2
    return np.repeat(corners + [x, y, 0], [239, 239], axis=0).astype(np.float32)


def test_slots_follow_each_face_when_their_sizes_swap_or_one_leaves():
    left, right = _face_at(100, 200, 80), _face_at(400, 200, 60)
    places = [None, None]
    first = assign_slots([left, right], places)  # largest first, as the tracker gives them
    places = [np.array([100, 200, 80.0]), np.array([400, 200, 60.0])]
    assert first[0] is left and first[1] is right
    # the right face grows past the left one: the tracker now lists it first; the slots stay
    grown = _face_at(405, 200, 100)
    swapped = assign_slots([grown, _face_at(102, 201, 80)], places)
    assert swapped[1] is grown and swapped[0] is not None and swapped[0][0, 0] == pytest.approx(62)
    # only the right face is in view: it keeps its slot, the other slot is empty
    alone = assign_slots([_face_at(398, 202, 60)], places)
    assert alone[0] is None and alone[1] is not None
    # a face far from a free slot's last place... with one slot never used, a newcomer takes it
    newcomer = assign_slots([_face_at(700, 200, 60)], [np.array([100, 200, 80.0]), None])
    assert newcomer[0] is None and newcomer[1] is not None


def test_the_persons_face_is_dubbed_when_another_larger_face_is_in_view(clip_frames, person, speech, tmp_path):
    """Two people side by side: a stranger (larger, left) and the profile's person (smaller,
    right). The person's mouth is redrawn; the stranger's half is left as it is."""
    other = [cv2.resize(f, (450, 450)) for f in read_frames(DATA / "other_person_2s.mp4")]
    frames = []
    for stranger, own in zip(other, clip_frames):
        canvas = np.zeros((450, 800, 3), np.uint8)
        canvas[:, :450] = stranger
        canvas[60:390, 470:800] = cv2.resize(own, (330, 330), interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    video = write_video(tmp_path / "two_people.mp4", frames)
    out = tmp_path / "two_people_dubbed.mp4"
    result = dub(video, speech, out, person, DubConfig(refine=False, fit="hold", crf=0), device="cpu")
    made, source = list(read_frames(out)), list(read_frames(video))
    assert result.dubbed_frames > 0.9 * len(made)
    stranger_psnr = min(psnr(m[:, :450], s[:, :450]) for m, s in zip(made, source))
    assert stranger_psnr > 45, f"the stranger's face was changed: {stranger_psnr:.1f} dB"
    mouth = (slice(60 + 280 * 330 // 450, 60 + 360 * 330 // 450), slice(470 + 170 * 330 // 450, 470 + 290 * 330 // 450))
    person_psnr = np.mean([psnr(m[mouth], s[mouth]) for m, s in zip(made, source)])
    assert person_psnr < 38, f"the person's mouth was not redrawn: {person_psnr:.1f} dB"


def test_a_profile_is_built_from_the_video_and_reused(clip, speech, tmp_path):
    started = time.perf_counter()
    first = dub(clip, speech, tmp_path / "a.mp4", None, DubConfig(refine=False), "cpu", finetune_config=SHORT)
    took = time.perf_counter() - started
    assert (first.profile / "profile.json").exists()
    assert json.loads((first.profile / "dub_source.json").read_text())["frames"] == 75
    started = time.perf_counter()
    second = dub(clip, speech, tmp_path / "b.mp4", None, DubConfig(refine=False), "cpu", finetune_config=SHORT)
    assert second.profile == first.profile and time.perf_counter() - started < took


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, message",
    [({"fit": "bounce"}, "unknown --fit"), ({"mouth_scale": float("nan")}, "mouth-scale"), ({"crf": 60}, "crf"), ({"preset": "huge"}, "preset")],
)
def test_dub_settings_out_of_range(settings, message):
    with pytest.raises(InputError, match=message):
        DubConfig(**settings).check()


def test_bad_inputs_are_refused_before_work(clip, person, speech, clip_audio, tmp_path):
    with pytest.raises(InputError, match="also an input"):
        dub(clip, speech, clip, person)
    with pytest.raises(InputError, match="not found"):
        dub(tmp_path / "missing.mp4", speech, tmp_path / "o.mp4", person)
    bad = clip_audio.samples.copy()
    bad[100:110] = np.nan
    with pytest.raises(InputError, match="not numbers"):
        dub(clip, float_wav(tmp_path / "nan.wav", bad), tmp_path / "o.mp4", person)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    with pytest.raises(InputError):
        dub(truncated, speech, tmp_path / "o.mp4", person)
    silent = write_audio(tmp_path / "silent.wav", Audio(np.zeros(32000, np.float32), 16000))
    with pytest.raises(InputError, match="silent"):
        dub(clip, silent, tmp_path / "o.mp4", person)
    assert not (tmp_path / "o.mp4").exists()


def test_a_silent_video_needs_a_person(clip_frames, speech, tmp_path):
    mute = write_video(tmp_path / "mute.mp4", clip_frames)
    with pytest.raises(NoAudioStreamError):
        dub(mute, speech, tmp_path / "o.mp4", None, DubConfig(refine=False), "cpu", finetune_config=SHORT)


def test_cli_dub_is_one_line_on_error_and_resumes_after_sigterm(clip, person, speech, tmp_path):
    base = [sys.executable, "-m", "talkface", "dub", "--video", str(clip), "--audio", str(speech), "--person", str(person.folder)]
    done = subprocess.run([*base, "--out", str(tmp_path / "o.mp4"), "--fit", "bounce"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown --fit" in done.stderr and "Traceback" not in done.stderr
    # segments of 25 frames: a SIGTERM once two are done, then a rerun that reuses them
    script = (
        "import signal, sys\n"
        "from talkface.cli import _terminated\n"
        "signal.signal(signal.SIGTERM, _terminated)\n"
        "from talkface.config import DubConfig\n"
        "from talkface.dub import dub\n"
        "dub(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], DubConfig(refine=False, segment_frames=25), 'cpu')\n"
    )
    out = tmp_path / "resumed.mp4"
    args = [sys.executable, "-c", script, str(clip), str(speech), str(out), str(person.folder)]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    segments = []
    while time.time() < deadline and process.poll() is None:
        segments = list((_talkface_home() / "dubs").rglob("segments/*/*.mp4"))
        if len(segments) >= 2:
            break
        time.sleep(0.2)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        assert code == 143, process.stderr.read()[-3000:]
        assert not out.exists() and not list(out.parent.glob("*.partial"))
    kept = {p.name for p in segments}
    done = subprocess.run(args, capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "TALKFACE_QUIET"})
    assert done.returncode == 0, done.stderr
    assert probe(out).duration == pytest.approx(5.0, abs=0.1)
    if kept:
        assert "resuming" in done.stderr


def _talkface_home():
    from talkface.profile import talkface_home

    return talkface_home()


def test_cuts_are_found_in_letterboxed_footage(clip_frames, tmp_path):
    """Dark borders dilute the change at a cut (to about 15 of 255 here): still found, and a
    talking head's own motion within a shot is not a cut."""
    from talkface.config import TrackConfig
    from talkface.dub import load_footage

    other = [cv2.resize(f, (450, 450)) for f in read_frames(DATA / "other_person_2s.mp4")]
    boxed = lambda f: cv2.copyMakeBorder(f, 60, 60, 200, 200, cv2.BORDER_CONSTANT, value=(20, 20, 20))  # noqa: E731
    video = write_video(tmp_path / "boxed.mp4", [boxed(f) for f in [*clip_frames[:40], *other[:30], *clip_frames[40:]]])
    footage = load_footage(video, tmp_path / "work", TrackConfig())
    assert [first for first, _ in footage.shots] == [0, 40, 70]
