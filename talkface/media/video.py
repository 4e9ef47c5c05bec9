"""Decode video frames at a fixed frame rate and encode H.264 mp4 with AAC audio."""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from talkface.config import FPS
from talkface.errors import InputError, NoVideoStreamError
from talkface.media.audio import Audio
from talkface.media.destination import partial_path
from talkface.media.probe import open_media

AUDIO_FRAME_SAMPLES = 1024  # samples per AAC frame


def _timed_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (seconds since the first frame, RGB uint8 HxWx3 frame) in decode order, rotation applied."""
    with open_media(path) as container:
        if not container.streams.video:
            raise NoVideoStreamError(f"{path} has no video stream; give a video of the person (mp4, mov, mkv, webm)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or FPS)
        start, index, time = None, 0, 0.0
        declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        try:
            for index, frame in enumerate(container.decode(stream)):
                time = frame.time if frame.time is not None else index / rate
                start = time if start is None else start
                image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))  # drop row padding
                rotation = int(round(frame.rotation or 0)) % 360
                if rotation:
                    # frame.rotation is counter-clockwise degrees; np.rot90 turns counter-clockwise.
                    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
                yield time - start, image
        except av.error.FFmpegError as exc:
            raise InputError(f"{path} could not be decoded past {index} frames: {exc}") from exc
        decoded = time - (start or 0.0) + 1.0 / rate
        if declared is not None and declared - decoded > max(1.0, 0.05 * declared):
            raise InputError(
                f"{path} is cut short: it declares {declared:.1f} s of video but only {decoded:.1f} s decode; "
                "the file is truncated or damaged: copy or export it again"
            )


def read_frames(path: str | Path, fps: float = FPS) -> Iterator[np.ndarray]:
    """Yield the video's frames resampled to `fps` by nearest timestamp.

    Args:
        path: a video file (mp4, mov, mkv, webm, ...).
        fps: output frame rate (frames/s).

    Yields:
        RGB frames, uint8 (H, W, 3), one per 1/fps seconds.

    Raises:
        InputError: unreadable file; NoVideoStreamError: no video stream.
    """
    k = 0
    prev_time, prev_image, step = None, None, 1.0 / fps
    for time, image in _timed_frames(Path(path)):
        if prev_image is not None:
            step = time - prev_time if time > prev_time else step
            while k / fps < (prev_time + time) / 2:
                yield prev_image
                k += 1
        prev_time, prev_image = time, image
    if prev_image is None:
        raise InputError(f"{path} has a video stream but no frame could be decoded")
    while k / fps < prev_time + step / 2:
        yield prev_image
        k += 1


def read_frames_at(path: str | Path, indices: Iterable[int], fps: float = FPS) -> dict[int, np.ndarray]:
    """Return {index: frame} for the given output-frame indices (one decoding pass)."""
    wanted = set(indices)
    found: dict[int, np.ndarray] = {}
    last = max(wanted, default=-1)
    for index, frame in enumerate(read_frames(path, fps)):
        if index in wanted:
            found[index] = frame
        if index >= last:
            break
    return found


def _even(image: np.ndarray) -> np.ndarray:
    """Pad a frame by one edge pixel where a side is odd: yuv420p needs even sizes."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return image


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float = FPS,
    audio: Audio | None = None,
    crf: int = 18,
) -> Path:
    """Encode frames as H.264 mp4 (with AAC audio if given), atomically.

    The file is written under a unique temporary name beside `path` (see
    `talkface.media.destination`) and renamed when complete, so an interrupted run never leaves
    a truncated video under the final name, and two runs never write the same temporary.

    Args:
        path: output .mp4 path.
        frames: RGB uint8 (H, W, 3) frames, all the same size.
        fps: frame rate (frames/s).
        audio: optional audio to mux; it is trimmed or padded to the video's length.
        crf: x264 quality (lower is better; 18 is visually lossless).

    Returns:
        The output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise InputError(f"no frames to write to {path}")
    try:
        _encode(tmp, itertools.chain([first], frames), fps, audio, crf)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _encode(tmp: Path, frames: Iterator[np.ndarray], fps: float, audio: Audio | None, crf: int) -> None:
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(tmp), "w", format="mp4") as container:
        video = None
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=audio.sample_rate, layout="mono")
            audio_stream.bit_rate = 128_000
        written_samples = 0
        n_frames = 0
        for image in frames:
            image = _even(np.ascontiguousarray(image, dtype=np.uint8))
            if video is None:
                video = container.add_stream("libx264", rate=rate)
                video.width, video.height = image.shape[1], image.shape[0]
                video.pix_fmt = "yuv420p"
                video.options = {"crf": str(crf), "preset": "veryfast"}
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(video.encode(frame))
            n_frames += 1
            if audio_stream is not None:
                until = int(round(n_frames / fps * audio.sample_rate))
                written_samples = _mux_audio(container, audio_stream, audio, written_samples, until)
        container.mux(video.encode())
        if audio_stream is not None:
            # pad the last AAC frame so the sound lasts as long as the picture
            end = int(np.ceil(n_frames / fps * audio.sample_rate / AUDIO_FRAME_SAMPLES)) * AUDIO_FRAME_SAMPLES
            _mux_audio(container, audio_stream, audio, written_samples, end)
            container.mux(audio_stream.encode())


def _mux_audio(container, stream, audio: Audio, start: int, stop: int) -> int:
    """Encode audio samples [start, stop) (zero past the audio's end) in AAC-sized frames."""
    while start + AUDIO_FRAME_SAMPLES <= stop:
        chunk = audio.samples[start : start + AUDIO_FRAME_SAMPLES]
        if len(chunk) < AUDIO_FRAME_SAMPLES:
            chunk = np.pad(chunk, (0, AUDIO_FRAME_SAMPLES - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = audio.sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
        start += AUDIO_FRAME_SAMPLES
    return start
