"""Decode any audio (or a video's audio track) to 16 kHz mono float32, and write wav/flac/m4a/mp3."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from talkface.config import SAMPLE_RATE
from talkface.errors import InputError, NoAudioStreamError
from talkface.media.clock import media_clock
from talkface.media.probe import open_media
from talkface.storage import partial_path

# container format and codec for each audio file extension we write
_AUDIO_WRITERS = {
    ".wav": ("wav", "pcm_s16le"),
    ".flac": ("flac", "flac"),
    ".m4a": ("mp4", "aac"),
    ".mp3": ("mp3", "mp3"),
}


@dataclass(frozen=True)
class Audio:
    """Mono audio.

    Attributes:
        samples: (N,) float32 in [-1, 1].
        sample_rate: Hz.
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Decode the first audio stream of `path`, mixed to mono and resampled, on the file's clock:
    a video's sound that starts after its picture is preceded by that much silence, so sample n
    plays with the picture at n / sample_rate seconds (`talkface.media.clock`).

    Args:
        path: an audio file (wav, mp3, flac, m4a, ...) or a video with sound.
        sample_rate: output rate in Hz.

    Raises:
        InputError: unreadable file; NoAudioStreamError: the file has no audio stream.
    """
    with open_media(path) as container:
        if not container.streams.audio:
            raise NoAudioStreamError(
                f"{path} has no audio stream; this step needs speech. Give a file with sound (wav, mp3, flac, m4a, or a video with audio)"
            )
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise InputError(f"the audio of {path} could not be decoded: {exc}") from exc
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    del chunks  # an hour of 16 kHz sound is 230 MB: never three copies of it at once
    late = int(round(media_clock(path).audio_offset * sample_rate))
    if late:
        samples = np.concatenate([np.zeros(late, np.float32), samples])
    broken = int(np.count_nonzero(~np.isfinite(samples)))
    if broken:
        raise InputError(
            f"the audio of {path} holds {broken} samples that are not numbers (NaN or infinite); "
            "re-export it (e.g. as 16-bit PCM wav) and try again"
        )
    return Audio(samples=samples, sample_rate=sample_rate)


def write_audio(path: str | Path, audio: Audio) -> Path:
    """Write mono audio to .wav, .flac, .m4a or .mp3 (chosen by extension), atomically."""
    path = Path(path)
    if path.suffix.lower() not in _AUDIO_WRITERS:
        raise InputError(f"cannot write audio as {path.suffix!r}; use one of {', '.join(_AUDIO_WRITERS)}")
    fmt, codec = _AUDIO_WRITERS[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        with av.open(str(tmp), "w", format=fmt) as container:
            stream = container.add_stream(codec, rate=audio.sample_rate, layout="mono")
            sample_format = stream.codec_context.codec.audio_formats[0].name
            frame_size = stream.codec_context.frame_size or 1024
            for start in range(0, len(audio.samples), frame_size):
                chunk = np.clip(audio.samples[start : start + frame_size], -1.0, 1.0)
                if len(chunk) < frame_size and codec != "pcm_s16le" and codec != "flac":
                    chunk = np.pad(chunk, (0, frame_size - len(chunk)))
                frame = av.AudioFrame.from_ndarray(_to_format(chunk, sample_format), format=sample_format, layout="mono")
                frame.sample_rate = audio.sample_rate
                frame.pts = start
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _to_format(chunk: np.ndarray, sample_format: str) -> np.ndarray:
    """Convert float samples in [-1, 1] to the (1, n) array PyAV expects for `sample_format`."""
    if sample_format.startswith("s16"):
        return (chunk * 32767).astype(np.int16)[None, :]
    if sample_format.startswith("s32"):
        return (chunk * 2147483647).astype(np.int32)[None, :]
    return chunk.astype(np.float32)[None, :]
