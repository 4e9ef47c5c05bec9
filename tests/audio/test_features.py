"""Audio features: alignment to video frames, the Whisper weights' checksum, bad audio."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.audio import check_speech, extract, n_video_frames
from talkface.audio import whisper as whisper_module
from talkface.audio.mfcc import mfcc_features
from talkface.errors import CacheError, InputError
from talkface.media import Audio, load_audio, write_audio

RATE = 16000


def _burst_at(seconds: float, total: float = 3.0) -> np.ndarray:
    samples = np.zeros(int(total * RATE), np.float32)
    start = int(seconds * RATE)
    samples[start : start + RATE // 10] = np.random.default_rng(0).normal(0, 0.3, RATE // 10)
    return samples


def test_mfcc_rows_follow_video_frames():
    features = mfcc_features(_burst_at(1.0), 75)
    assert features.shape == (75, 104)
    energy = features[:, 0]  # log energy of each frame's first 10 ms step
    assert int(np.argmax(energy)) in (25, 26)  # the burst starts at 1.0 s = frame 25


def test_whisper_states_follow_video_frames(clip_audio):
    speech = np.zeros(6 * RATE, np.float32)
    speech[2 * RATE : 3 * RATE] = clip_audio.samples[RATE : 2 * RATE]  # 1 s of speech at 2-3 s
    features = extract(Audio(speech, RATE), "whisper", 150)
    assert features.shape == (150, 512)
    silent = features[:40].mean(0)
    change = np.linalg.norm(features - silent, axis=1)
    assert change[52:73].mean() > 2 * change[5:40].mean()


def test_feature_sets_concatenate(clip_audio):
    both = extract(clip_audio, "mfcc+whisper")
    assert both.shape == (n_video_frames(clip_audio), 104 + 512)
    with pytest.raises(InputError, match="unknown audio features"):
        extract(clip_audio, "deepspeech")


def test_long_audio_is_encoded_in_windows():
    samples = np.tile(_burst_at(0.5, 1.0), 70)  # 70 s: three 30 s Whisper windows
    features = extract(Audio(samples, RATE), "whisper")
    assert features.shape == (1750, 512) and np.isfinite(features).all()


def test_whisper_weights_are_checked(monkeypatch):
    monkeypatch.setattr(whisper_module, "WHISPER_SHA256", "0" * 64)
    with pytest.raises(CacheError, match="SHA-256"):
        whisper_module.joined_model_files()


def test_silent_audio_is_refused():
    with pytest.raises(InputError, match="silent"):
        check_speech(Audio(np.zeros(2 * RATE, np.float32), RATE), "quiet.wav")


def test_too_short_audio_is_refused(clip_audio):
    with pytest.raises(InputError, match="at least 0.5 s"):
        check_speech(Audio(clip_audio.samples[: RATE // 5], RATE), "blip.wav")


def test_unreadable_audio_is_refused(tmp_path):
    path = tmp_path / "speech.mp3"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError):
        load_audio(path)


def test_speech_survives_a_round_trip_but_not_a_fade_to_silence(tmp_path, clip_audio):
    check_speech(load_audio(write_audio(tmp_path / "s.flac", clip_audio)), "s.flac")
    faded = Audio(clip_audio.samples * 10 ** (-70 / 20), clip_audio.sample_rate)  # 70 dB down: below any speech
    with pytest.raises(InputError, match="silent"):
        check_speech(load_audio(write_audio(tmp_path / "faded.flac", faded)), "faded.flac")


def test_mfcc_by_chunks_equals_one_pass(clip_audio, monkeypatch):
    """Memory stays flat for long audio: a minute at a time, with context carried across chunks."""
    from talkface.audio import mfcc

    samples = clip_audio.samples[:-77]  # not a whole number of steps
    whole = mfcc.mfcc_features(samples, 70)
    monkeypatch.setattr(mfcc, "CHUNK_STEPS", 7)
    np.testing.assert_allclose(mfcc.mfcc_features(samples, 70), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sizes", [[1500, 1500, 37], [7], [1500], [3, 3, 3], [0], [1499, 1]])
@pytest.mark.parametrize("n_frames", [1, 5, 700, 1520, 2000])
def test_whisper_frames_are_built_window_by_window(sizes, n_frames):
    """Frames averaged as each 30 s window arrives equal averaging the whole (cut or edge-padded) sequence."""
    from talkface.audio.align import fit_length
    from talkface.audio.whisper import STATE_SIZE, frames_from_states

    rng = np.random.default_rng(len(sizes) * 10_000 + n_frames)
    windows = [rng.normal(size=(k, STATE_SIZE)).astype(np.float32) for k in sizes]
    whole = fit_length(np.concatenate(windows), 2 * n_frames).reshape(n_frames, 2, -1).mean(1)
    np.testing.assert_allclose(frames_from_states(iter(windows), 2, n_frames), whole, atol=1e-6)
