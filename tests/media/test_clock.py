"""One clock for sound and picture: files whose streams start apart, made in the test from the real clip,
read, tracked, finetuned, dubbed and evaluated on the sound's timeline."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from talkface.config import DubConfig, FinetuneConfig
from talkface.errors import ClipTooShortError, InputError
from talkface.media import load_audio, probe, read_frames
from talkface.media.clock import media_clock
from talkface.media.video import FrameSource, write_excerpt

from .timed import encode_at, remux

SHORT = FinetuneConfig(min_seconds=2.0, refiner=False)  # the shipped clip is 3 s
LOWER_FACE = slice(270, 450)  # rows from the nose tip down in obama_3s


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-12)))


def source_index(frame: np.ndarray, originals: list[np.ndarray]) -> int:
    """Which of the clip's frames this one is (they differ from each other far more than by coding)."""
    return int(np.argmin([np.abs(frame[::4, ::4].astype(np.int16) - o[::4, ::4]).mean() for o in originals]))


def sound_lag(audio: np.ndarray, original: np.ndarray, rate: int = 16000) -> float:
    """Seconds `audio` is late against `original` (cross-correlation of 0.4 s of speech)."""
    piece = original[rate // 10 : rate // 2]
    scores = np.correlate(audio[: 2 * rate], piece, "valid")
    return (int(np.argmax(scores)) - rate // 10) / rate


@pytest.fixture(scope="module")
def person(clip, tmp_path_factory):
    from talkface.finetune import finetune

    return finetune(clip, tmp_path_factory.mktemp("clock-person"), SHORT)


@pytest.fixture(scope="module")
def timed(clip, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("timed")
    return {
        "picture 0.067 s late": remux(clip, folder / "late067.mp4", video_shift=0.067),
        "picture 0.5 s late": remux(clip, folder / "late500.mp4", video_shift=0.5),
        "sound 0.5 s late": remux(clip, folder / "sound_late.mp4", audio_shift=0.5),
        "edit list on both": remux(clip, folder / "both.mp4", video_shift=0.7, audio_shift=0.7),
        "negative start": remux(clip, folder / "negative.mkv", video_shift=-0.2, fmt="matroska"),
        "rotated and late": remux(clip, folder / "rotated.mp4", video_shift=0.5, rotation=90),
    }


# (picture after sound in s, frames before the first picture, source frame of output frame 10)
EXPECTED = {
    "picture 0.067 s late": (0.067, 2, 8),
    "picture 0.5 s late": (0.5, 12, 0),
    "sound 0.5 s late": (-0.5, 0, 10),
    "edit list on both": (0.0, 0, 10),
    "negative start": (-0.2, 0, 10),
}


@pytest.mark.parametrize("case", EXPECTED)
def test_frames_and_sound_are_placed_on_one_clock(case, timed, clip_frames, clip_audio):
    after, held, tenth = EXPECTED[case]
    path = timed[case]
    assert probe(path).picture_after_sound == pytest.approx(after, abs=0.002)
    frames = list(read_frames(path))
    assert [source_index(f, clip_frames) for f in frames[: held + 1]] == [0] * (held + 1)
    assert source_index(frames[10], clip_frames) == tenth
    assert source_index(frames[-1], clip_frames) == 74
    sound = load_audio(path).samples
    assert sound_lag(sound, clip_audio.samples) == pytest.approx(max(-after, 0.0), abs=0.002)
    # frames seeked to (the renderers' FrameSource) are the frames read in order
    source = FrameSource(path)
    for index in (40, 3, 60):
        assert np.array_equal(source[index], frames[index])


def test_a_rotation_flag_with_an_offset(timed, clip_frames):
    frames = list(read_frames(timed["rotated and late"]))
    assert len(frames) == 75 + 12
    assert source_index(frames[30], clip_frames) != 18 or np.abs(frames[30].astype(int) - clip_frames[18]).mean() > 10  # turned
    upright = [np.ascontiguousarray(np.rot90(f, k=-1)) for f in frames]  # shown turned a quarter counter-clockwise
    assert source_index(upright[12], clip_frames) == 0 and source_index(upright[30], clip_frames) == 18


def test_a_variable_frame_rate_is_read_by_presentation_time(clip_frames, clip_audio, tmp_path):
    rates = (29.97, 30.0, 24.0)  # a phone's mix
    times = np.cumsum([0.0] + [1 / rates[(i // 10) % 3] for i in range(74)])
    path = encode_at(clip_frames, list(times), clip_audio.samples, clip_audio.sample_rate, tmp_path / "vfr.mp4", audio_start=0.0)
    frames = list(read_frames(path))
    wanted = [int(np.argmin(np.abs(times - k / 25))) for k in range(len(frames))]
    assert [source_index(f, clip_frames) for f in frames] == wanted


def test_an_excerpt_starts_its_picture_and_sound_together(timed, clip_frames, clip_audio, tmp_path):
    excerpt = write_excerpt(timed["picture 0.5 s late"], 20, 40, tmp_path / "excerpt.mp4")
    assert probe(excerpt).picture_after_sound == pytest.approx(0.0, abs=0.002)
    frames = list(read_frames(excerpt))
    assert source_index(frames[0], clip_frames) == 8 and source_index(frames[39], clip_frames) == 47
    lag = sound_lag(load_audio(excerpt).samples, clip_audio.samples[int(0.8 * 16000) :])
    assert lag == pytest.approx(0.0, abs=0.002)


def test_streams_that_never_play_together_are_an_error(clip, tmp_path):
    far = remux(clip, tmp_path / "far.mp4", video_shift=100.0)  # a stream start far beyond the other's end
    with pytest.raises(InputError, match="do not overlap"):
        list(read_frames(far))
    with pytest.raises(InputError, match="do not overlap"):
        load_audio(far)
    run = subprocess.run([sys.executable, "-m", "talkface", "track", "--video", str(far), "--out", str(tmp_path / "t")], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr and "do not overlap" in run.stderr


def test_track_json_and_probe_say_the_offset(timed, tmp_path):
    path = timed["picture 0.5 s late"]
    run = subprocess.run(
        [sys.executable, "-m", "talkface", "track", "--video", str(path), "--out", str(tmp_path / "t"), "--json", "--no-overlay"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["picture_after_sound_s"] == pytest.approx(0.5, abs=0.002) and summary["n_frames"] == 87
    assert summary["gaps"] == []  # the held first picture has the face too
    probed = subprocess.run([sys.executable, "-m", "talkface", "probe", str(path), "--json"], capture_output=True, text=True, timeout=60)
    assert json.loads(probed.stdout)["picture_after_sound"] == pytest.approx(0.5, abs=0.002)


def test_finetune_learns_from_where_sound_and_picture_play_together(timed, person, clip_frames, tmp_path):
    from talkface.finetune import finetune
    from talkface.render.frames import FrameStore
    from talkface.storage import load_npz

    plain = person
    late = finetune(timed["picture 0.067 s late"], tmp_path / "late", SHORT)
    assert not (late.folder / "sample.mp4").exists()  # nothing re-encoded
    # on the sound's clock: 77 frames, the first two holding the first picture (not learnt from)
    assert late.info.source.n_frames == 77 and plain.info.source.n_frames == 75
    assert not late.clip_fit.valid[:2].any() and late.clip_fit.valid[2:].all()
    # the same sound as the clip, frame for frame, and the pictures shown with it: the clip's frame
    # j is shown at 0.067 + j / 25 s, nearest to the sound's frame j + 2
    plain_mfcc = load_npz(plain.folder / "features_mfcc_whisper.npz")["features"][:, :13]
    late_mfcc = load_npz(late.folder / "features_mfcc_whisper.npz")["features"][:, :13]
    assert np.corrcoef(plain_mfcc[:74].ravel(), late_mfcc[:74].ravel())[0, 1] > 0.98
    stored = FrameStore(late.folder / "frames.npz")
    assert [source_index(stored[k], clip_frames) for k in (0, 30, 76)] == [0, 28, 74]
    with pytest.raises(ClipTooShortError, match="play together for only 2.5 s"):
        finetune(timed["picture 0.5 s late"], tmp_path / "short", FinetuneConfig(min_seconds=2.8, refiner=False))


def test_self_dub_keeps_every_picture_at_its_own_time(timed, person, tmp_path):
    """A clip dubbed with its own sound: outside the lower face the output is the input, frame for
    frame on the sound's clock (the picture is not moved against its sound)."""
    from talkface.dub import dub

    for case in ("picture 0.067 s late", "picture 0.5 s late"):
        video = timed[case]
        out = dub(video, video, tmp_path / f"{video.stem}_dub.mp4", person, DubConfig(refine=False, fit="hold"), device="cpu").video
        made, real = list(read_frames(out)), list(read_frames(video))
        first = EXPECTED[case][1]
        upper = [psnr(m[: LOWER_FACE.start], r[: LOWER_FACE.start]) for m, r in zip(made[first:], real[first:])]
        assert np.median(upper) > 40 and min(upper) > 35, f"{case}: {np.median(upper):.1f} dB above the lower face"
        assert sound_lag(load_audio(out).samples, load_audio(video).samples) == pytest.approx(0.0, abs=0.002)


def test_evaluate_reads_an_edit_listed_copy_as_the_same_frames(timed, clip):
    from talkface.evaluate import evaluate

    result = evaluate(timed["edit list on both"], clip)
    assert result.comparison.n_frames_compared == 75
    assert result.comparison.psnr_full == 100.0 and result.comparison.time_offset_frames == 0


def test_render_onto_keeps_the_videos_clock_and_sound(timed, person, tmp_path):
    from talkface.motion import save_motion
    from talkface.render_motion import render
    from talkface.track import track_in_profile

    video = timed["picture 0.5 s late"]
    motion = save_motion(tmp_path / "m.npz", track_in_profile(video, person.folder))
    out = render(motion, tmp_path / "onto.mp4", person, refine=False, onto=video).video
    assert probe(out).has_audio
    assert sound_lag(load_audio(out).samples, load_audio(video).samples) == pytest.approx(0.0, abs=0.002)
    made, real = list(read_frames(out)), list(read_frames(video))
    assert len(made) == len(real) and np.median([psnr(m[:200], r[:200]) for m, r in zip(made, real)]) > 35
    silent = render(motion, tmp_path / "silent.mp4", person, refine=False, onto=video, keep_sound=False).video
    assert not probe(silent).has_audio


@pytest.mark.parametrize("content", [None, b"", b"hello, not media", b"\x00" * 4096])
def test_probe_of_a_bad_file_is_one_line(tmp_path, content):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    run = subprocess.run([sys.executable, "-m", "talkface", "probe", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "InputError" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
