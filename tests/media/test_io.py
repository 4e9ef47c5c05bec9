"""Media I/O round trips on real media: containers, frame rates, sizes, audio formats, errors."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from talkface.errors import InputError, NoAudioStreamError, NoVideoStreamError
from talkface.media import Audio, load_audio, probe, read_frames, write_audio, write_video


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def write_with_av(path, frames, fps, codec="libx264", audio: Audio | None = None, audio_codec="aac"):
    """Write a video in any container with PyAV directly (independent of talkface's writer)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_reads_the_shipped_clip_at_25_fps(clip, clip_frames):
    info = probe(clip)
    assert (info.width, info.height, info.has_video, info.has_audio) == (450, 450, True, True)
    assert len(clip_frames) == 75
    assert clip_frames[0].shape == (450, 450, 3) and clip_frames[0].dtype == np.uint8


def test_video_round_trip_keeps_frames_and_muxes_audio(tmp_path, clip_frames, clip_audio):
    out = write_video(tmp_path / "round.mp4", clip_frames, audio=clip_audio)
    back = list(read_frames(out))
    assert len(back) == len(clip_frames)
    assert min(psnr(a, b) for a, b in zip(clip_frames, back)) > 35
    info = probe(out)
    assert info.has_audio and info.audio_sample_rate == 16000
    sound = load_audio(out)
    assert abs(sound.duration - len(clip_frames) / 25) < 0.1
    # the muxed sound is the input sound (AAC adds a small delay: compare envelopes)
    envelope = lambda s: np.abs(s[: 16000 * 2]).reshape(-1, 400).mean(1)  # noqa: E731
    assert np.corrcoef(envelope(sound.samples), envelope(clip_audio.samples))[0, 1] > 0.9
    assert not list(tmp_path.glob(".*partial*")), "no temporary file may be left behind"


@pytest.mark.parametrize("source_fps, seconds", [(30, 2.0), (50, 1.0), (12.5, 2.0), (29.97, 2.0)])
def test_frame_rate_is_normalised_by_nearest_timestamp(tmp_path, source_fps, seconds):
    n = int(round(source_fps * seconds))
    # each frame's brightness encodes its index so the picked source frame can be read back
    frames = [np.full((64, 64, 3), int(i * 200 / n), np.uint8) for i in range(n)]
    path = write_with_av(tmp_path / "rate.mp4", frames, source_fps)
    out = list(read_frames(path, fps=25))
    assert abs(len(out) - seconds * 25) <= 1
    picked = np.array([f.mean() for f in out]) / 200 * n
    expected = np.arange(len(out)) / 25 * source_fps
    assert np.abs(picked - expected).max() <= 1.5


@pytest.mark.parametrize("suffix, codec", [(".mkv", "libx264"), (".mov", "libx264"), (".webm", "libvpx-vp9")])
def test_reads_other_containers(tmp_path, clip_frames, suffix, codec):
    path = write_with_av(tmp_path / f"clip{suffix}", clip_frames[:25], 25, codec)
    back = list(read_frames(path))
    assert len(back) == 25 and back[0].shape == (450, 450, 3)
    assert psnr(back[10], clip_frames[10]) > 28


@pytest.mark.parametrize("size", [(1920, 1080), (257, 255)])
def test_any_size_and_aspect_ratio(tmp_path, clip_frames, size):
    import cv2

    height, width = size
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in clip_frames[:5]]
    out = write_video(tmp_path / "size.mp4", frames)
    info = probe(out)
    # odd sides are padded by one pixel for yuv420p
    assert (info.height, info.width) == (height + height % 2, width + width % 2)
    back = next(read_frames(out))
    assert psnr(back[:height, :width], frames[0]) > 30


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".m4a", ".mp3"])
def test_audio_formats_round_trip(tmp_path, clip_audio, suffix):
    path = write_audio(tmp_path / f"speech{suffix}", clip_audio)
    back = load_audio(path)
    assert back.sample_rate == 16000
    assert abs(back.duration - clip_audio.duration) < 0.1
    if suffix in (".wav", ".flac"):
        assert np.abs(back.samples[: len(clip_audio.samples)] - clip_audio.samples).max() < 1e-3
    else:  # lossy codecs shift and shape the signal; the loudness envelope survives
        size = 1600
        n = min(len(back.samples), len(clip_audio.samples)) // size * size
        env = lambda s: np.abs(s[:n]).reshape(-1, size).mean(1)  # noqa: E731
        assert np.corrcoef(env(back.samples), env(clip_audio.samples))[0, 1] > 0.9


def test_audio_is_resampled_to_16k_mono(tmp_path):
    rate = 48000
    t = np.arange(rate) / rate
    left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo48k.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray((np.stack([left, right]).T.reshape(1, -1) * 16000).astype(np.int16), format="s16", layout="stereo")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    audio = load_audio(path)
    assert audio.sample_rate == 16000 and abs(audio.duration - 1.0) < 0.01
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert abs(np.argmax(spectrum) * 16000 / len(audio.samples) - 440) < 2


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe(tmp_path / "nope.mp4")


def test_unreadable_file(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video")
    with pytest.raises(InputError, match="cannot read"):
        list(read_frames(path))


def test_audio_only_file_has_no_video(tmp_path, clip_audio):
    path = write_audio(tmp_path / "speech.wav", clip_audio)
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        list(read_frames(path))


def test_silent_video_has_no_audio(tmp_path, clip_frames):
    path = write_video(tmp_path / "silent.mp4", clip_frames[:5])
    with pytest.raises(NoAudioStreamError, match="no audio stream"):
        load_audio(path)
