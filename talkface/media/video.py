"""Decode video frames at a fixed frame rate and encode H.264 mp4 with AAC audio."""

from __future__ import annotations

import contextlib
import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from talkface.config import DEFAULT_CRF, FPS
from talkface.errors import InputError, NoVideoStreamError
from talkface.media.audio import Audio
from talkface.media.clock import media_clock
from talkface.media.destination import STDOUT, is_stdout, partial_path
from talkface.media.probe import open_media
from talkface.pipeline import prefetched

AUDIO_FRAME_SAMPLES = 1024  # samples per AAC frame
# "veryfast" (until session 14) lost a third of a moving face's fine detail: a photo profile's `speak` kept
# 0.60 of the photo's face sharpness (Laplacian), 0.68 with "medium". "faster" at CRF 17 (config.DEFAULT_CRF)
# keeps what "medium" at 18 kept in two thirds of its time: on lossless `speak` frames (benchmarks/speak_speed.py),
# a 512² refined clip profile 13.8 -> 9.4 ms a frame, face PSNR 40.59 -> 40.75 dB, face sharpness 0.965 -> 0.966
# of the lossless frames; a 320² photo profile 4.8 -> 3.0 ms, 38.65 -> 38.56 dB, 0.884 -> 0.874. Files 8-14 % larger;
# refined `speak` of 30 s at 512² 0.95 of its wall time
X264_PRESET = "faster"
STREAM_FRAGMENT_US = 500_000  # `--out -`: a fragment of fragmented MP4 every half second


def _video_stream(container, path: Path) -> tuple:
    """The first video stream (decoded by threads) and its frame rate."""
    if not container.streams.video:
        raise NoVideoStreamError(f"{path} has no video stream; give a video of the person (mp4, mov, mkv, webm)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream, float(stream.average_rate or stream.guessed_rate or FPS)


def _timed_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (seconds on the file's clock, RGB uint8 HxWx3 frame) in decode order, rotation
    applied. The clock's zero is the earlier of the picture's and the sound's starts
    (`talkface.media.clock`), so a picture that starts after the sound starts after zero."""
    with open_media(path) as container:
        stream, rate = _video_stream(container, path)
        origin = media_clock(path).origin
        start, index, time = None, 0, 0.0
        declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        try:
            for index, frame in enumerate(container.decode(stream)):
                time = frame.time if frame.time is not None else (origin if start is None else start) + index / rate
                start = time if start is None else start
                yield time - origin, _image(frame)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path} could not be decoded past {index} frames: {exc}") from exc
        decoded = time - (start if start is not None else time) + 1.0 / rate
        if declared is not None and declared - decoded > max(1.0, 0.05 * declared):
            raise InputError(
                f"{path} is cut short: it declares {declared:.1f} s of video but only {decoded:.1f} s decode; "
                "the file is truncated or damaged: copy or export it again"
            )


def _image(frame) -> np.ndarray:
    """A decoded frame as RGB uint8 (H, W, 3), its rotation applied."""
    image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))  # drop row padding
    rotation = int(round(frame.rotation or 0)) % 360
    if rotation:
        # frame.rotation is counter-clockwise degrees; np.rot90 turns counter-clockwise.
        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
    return image


def read_frames(path: str | Path, fps: float = FPS) -> Iterator[np.ndarray]:
    """Yield the video's frames resampled to `fps` by nearest timestamp, on the file's clock.

    Frame k is the picture shown k / fps seconds after the file's start, the earlier of its
    picture's and its sound's (`talkface.media.clock`): frame k and the sound at k / fps seconds
    of `load_audio` play together. Before its first picture the video holds that picture.

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


def read_frames_from(path: str | Path, first: int, fps: float = FPS) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, frame) from frame `first` on, the same frames `read_frames` gives those
    indices, reached by seeking to the keyframe before it instead of decoding from the start."""
    with open_media(path) as container:
        stream, rate = _video_stream(container, path)
        origin = media_clock(path).origin
        target = max(first / fps - 1.0, 0.0)
        container.seek(int((origin + target) / stream.time_base), stream=stream, backward=True, any_frame=False)
        k, prev_time, prev_image = first, None, None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                time = frame.time - origin
                if prev_image is not None:
                    while k / fps < (prev_time + time) / 2:
                        yield k, prev_image
                        k += 1
                if time < k / fps - 2.0 / rate:  # well before the first wanted frame: skip the conversion
                    prev_time, prev_image = time, None
                    continue
                prev_time, prev_image = time, _image(frame)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path} could not be decoded past frame {k}: {exc}") from exc
        if prev_image is not None:
            while k / fps < prev_time + 0.5 / rate:
                yield k, prev_image
                k += 1


class FrameSource:
    """Frames of a video by index (at `fps`) in any order, in bounded memory.

    Runs of increasing indices stream from one decoder; a jump forward seeks; indices going
    backwards (a ping-pong) are read in chunks of `chunk` frames, each found by one seek.
    """

    def __init__(self, path: str | Path, fps: float = FPS, chunk: int = 48):
        self.path, self.fps, self.chunk = Path(path), fps, chunk
        self._stream: Iterator[tuple[int, np.ndarray]] | None = None
        self._next = -1  # the index the open stream yields next
        self._last = -1  # the index asked for last
        self._cached: dict[int, np.ndarray] = {}

    def __getitem__(self, index: int) -> np.ndarray:
        going_back = index < self._last
        self._last = index
        if index in self._cached:
            return self._cached[index]
        if going_back:
            return self._backwards(index)
        if self._stream is None or index != self._next:
            self._stream = read_frames_from(self.path, index, self.fps)
        for found, frame in self._stream:
            if found == index:
                self._next = index + 1
                return frame
        self._stream, self._next = None, -1
        raise InputError(f"{self.path} has no frame {index} at {self.fps:g} frames/s")

    def _backwards(self, index: int) -> np.ndarray:
        first = max(0, index - self.chunk + 1)
        self._cached = {}
        for found, frame in read_frames_from(self.path, first, self.fps):
            self._cached[found] = frame
            if found >= index:
                break
        if index not in self._cached:
            raise InputError(f"{self.path} has no frame {index} at {self.fps:g} frames/s")
        return self._cached[index]


def write_excerpt(video: str | Path, first: int, length: int, path: str | Path, fps: float = FPS) -> Path:
    """Frames [first, first + length) of `video` (at `fps`) with their sound, as a new mp4 (CRF 16)."""
    from talkface.media.audio import load_audio

    speech = load_audio(video, 48000)
    start, stop = int(first / fps * speech.sample_rate), int((first + length) / fps * speech.sample_rate)
    frames = (frame for _, frame in itertools.islice(read_frames_from(video, first, fps), length))
    return write_video(path, frames, fps, Audio(speech.samples[start:stop], speech.sample_rate), crf=16)


def concat_videos(segments: list[Path], out: str | Path, audio: Audio | None = None) -> Path:
    """Join mp4 segments (same size and codec settings, no B-frames) without re-encoding, with
    `audio` (AAC) muxed over their whole length; written atomically like `write_video`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(out)
    try:
        with av.open(str(tmp), "w", format="mp4") as output:
            with av.open(str(segments[0])) as first:
                video = output.add_stream_from_template(first.streams.video[0])
                fps = float(first.streams.video[0].average_rate)
            audio_stream = None
            if audio is not None:
                audio_stream = output.add_stream("aac", rate=audio.sample_rate, layout="mono")
                audio_stream.bit_rate = 128_000
            offset_seconds, written = 0.0, 0
            for segment in segments:
                with av.open(str(segment)) as source:
                    stream = source.streams.video[0]
                    shift = int(round(offset_seconds / stream.time_base))
                    n_frames = 0
                    for packet in source.demux(stream):
                        if packet.dts is None:
                            continue
                        packet.pts += shift
                        packet.dts += shift
                        packet.stream = video
                        output.mux(packet)
                        n_frames += 1
                offset_seconds += n_frames / fps
                if audio_stream is not None:
                    written = _mux_audio(output, audio_stream, audio, written, int(round(offset_seconds * audio.sample_rate)))
            if audio_stream is not None:
                end = int(np.ceil(offset_seconds * audio.sample_rate / AUDIO_FRAME_SAMPLES)) * AUDIO_FRAME_SAMPLES
                _mux_audio(output, audio_stream, audio, written, end)
                output.mux(audio_stream.encode())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


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
    crf: int = DEFAULT_CRF,
    b_frames: bool = True,
    preset: str = X264_PRESET,
) -> Path:
    """Encode frames as H.264 mp4 (with AAC audio if given), atomically.

    The file is written under a unique temporary name beside `path` (see
    `talkface.media.destination`) and renamed when complete, so an interrupted run never leaves
    a truncated video under the final name, and two runs never write the same temporary.

    With `path` "-" the video goes to standard output as it is made, as fragmented MP4 (a
    fragment every half second, x264 without look-ahead), so a player reading the pipe shows
    it while later frames are still being made.

    Args:
        path: output .mp4 path, or "-" for standard output.
        frames: RGB uint8 (H, W, 3) frames, all the same size.
        fps: frame rate (frames/s).
        audio: optional audio to mux; it is trimmed or padded to the video's length.
        crf: x264 quality (lower is better; 17 is visually lossless, 0 lossless in YUV 4:2:0).
        b_frames: False for segments that `concat_videos` joins.
        preset: x264's speed/quality preset.

    Returns:
        The output path.
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise InputError(f"no frames to write to {path}")
    frames = prefetched(itertools.chain([first], frames))  # the next frames are made while these are encoded
    if is_stdout(path):
        with contextlib.closing(frames):
            _encode(STDOUT, frames, fps, audio, crf, b_frames, preset)
        return Path(STDOUT)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        with contextlib.closing(frames):  # an encoding error stops the frame maker at once
            _encode(tmp, frames, fps, audio, crf, b_frames, preset)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _encode(tmp: Path | str, frames: Iterator[np.ndarray], fps: float, audio: Audio | None, crf: int, b_frames: bool = True, preset: str = X264_PRESET) -> None:
    rate = Fraction(fps).limit_denominator(1001)
    streaming = is_stdout(tmp)
    target, options = str(tmp), {}
    if streaming:
        target = "pipe:1"
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": str(STREAM_FRAGMENT_US)}
    with av.open(target, "w", format="mp4", options=options) as container:
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
                video.options = {"crf": str(crf), "preset": preset, **({} if b_frames else {"bf": "0"}), **({"tune": "zerolatency"} if streaming else {})}
            _encode_frame(container, video, image)
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


def _encode_frame(container, stream, image: np.ndarray) -> None:
    container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))


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
