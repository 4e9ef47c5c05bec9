"""Open media files with PyAV and describe them, turning libav failures into InputErrors."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av

from talkface.errors import InputError, NoAudioStreamError, NoVideoStreamError
from talkface.media.clock import media_clock


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, as read from its container.

    Attributes:
        path: the file.
        width, height: displayed video size in pixels (rotation metadata applied); 0 without video.
        fps: the source video's average frame rate (frames/s); 0 without video.
        duration: seconds of video, or of audio for an audio-only file.
        has_video, has_audio: whether such a stream exists.
        audio_sample_rate: Hz of the first audio stream; 0 without audio.
        picture_after_sound: seconds the picture starts after the sound (negative: before it);
            None unless the file has both (`talkface.media.clock`).
        video_offset: seconds from the file's clock's zero to its first picture (frames before
            it hold that picture).
    """

    path: Path
    width: int
    height: int
    fps: float
    duration: float
    has_video: bool
    has_audio: bool
    audio_sample_rate: int
    picture_after_sound: float | None = None
    video_offset: float = 0.0


@contextlib.contextmanager
def open_media(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open `path` for reading, raising InputError (with libav's words) if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.is_dir():
        raise InputError(f"expected a media file but {path} is a folder")
    if not path.is_file():  # a pipe or device would block or never end
        raise InputError(f"{path} is not a regular file (a pipe or device?); save the media to a file and give that")
    try:
        container = av.open(str(path), "r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read {path}: {exc}. Is it a video or audio file (mp4, mov, mkv, webm, wav, mp3, flac, m4a)?"
        ) from exc
    try:
        yield container
    finally:
        container.close()


def _first_frame_rotation(container: av.container.InputContainer) -> int:
    """Degrees (0, 90, 180, 270) the video is turned for display, read off its first frame."""
    try:
        for frame in container.decode(video=0):
            return int(round(frame.rotation or 0)) % 360
    except av.error.FFmpegError:
        return 0
    return 0


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file without decoding it.

    Raises:
        InputError: the file is missing or is not a readable media file.
    """
    with open_media(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise InputError(f"{path} holds neither a video nor an audio stream")
        container_duration = (container.duration or 0) / av.time_base
        width = height = 0
        fps = 0.0
        duration = container_duration
        if video is not None:
            width, height = video.codec_context.width, video.codec_context.height
            if _first_frame_rotation(container) in (90, 270):
                width, height = height, width
            fps = float(video.average_rate or video.guessed_rate or 0)
            if video.duration and video.time_base:
                duration = float(video.duration * video.time_base)
        elif audio is not None and audio.duration and audio.time_base:
            duration = float(audio.duration * audio.time_base)
        clock = media_clock(path)
        return MediaInfo(
            picture_after_sound=clock.picture_after_sound,
            video_offset=clock.video_offset,
            path=Path(path),
            width=width,
            height=height,
            fps=fps,
            duration=duration,
            has_video=video is not None,
            has_audio=audio is not None,
            audio_sample_rate=audio.rate if audio is not None else 0,
        )


def require_video(info: MediaInfo) -> None:
    """Raise NoVideoStreamError unless the file has a video stream."""
    if not info.has_video:
        raise NoVideoStreamError(f"{info.path} has no video stream; give a video of the person (mp4, mov, mkv, webm)")


def require_audio(info: MediaInfo) -> None:
    """Raise NoAudioStreamError unless the file has an audio stream."""
    if not info.has_audio:
        raise NoAudioStreamError(
            f"{info.path} has no audio stream; this step needs speech. Give a file with sound or pass the audio separately"
        )
