"""One clock for a file's sound and picture.

A phone recording, an editor's export or a clip cut with `ffmpeg -ss` often starts its picture a
little after its sound (or the other way round): stream start times, edit lists, AAC priming. Every
reader in talkface places both streams on one timeline whose zero is the earlier of the two starts,
as a player does: frame k of `read_frames` is the picture shown k / fps seconds after that zero
(the first picture held before it begins), and sample n of `load_audio` is heard n / rate seconds
after it (silence before the sound begins). For the usual file, whose streams start together,
this is the sound's own clock.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import av

from talkface.errors import InputError

# a start difference below this is no offset at all: mp4 muxers round stream starts to their time
# bases, and AAC priming leaves a few samples either way
NEGLIGIBLE_S = 0.002  # seconds


@dataclass(frozen=True)
class MediaClock:
    """Where a file's first video and audio streams start and end on the file's own timeline.

    Attributes:
        video_start, video_end: seconds (the first decoded picture's presentation time, and the
            stream's end); None without video.
        audio_start, audio_end: the same for the first audio stream; None without audio.
    """

    video_start: float | None
    video_end: float | None
    audio_start: float | None
    audio_end: float | None

    @property
    def origin(self) -> float:
        """The timeline's zero: the earlier start (seconds on the file's own timeline)."""
        starts = [s for s in (self.video_start, self.audio_start) if s is not None]
        return min(starts) if starts else 0.0

    @property
    def video_offset(self) -> float:
        """Seconds from the timeline's zero to the first picture (0 when the picture starts first)."""
        return _offset(self.video_start, self.origin)

    @property
    def audio_offset(self) -> float:
        """Seconds from the timeline's zero to the first sound (0 when the sound starts first)."""
        return _offset(self.audio_start, self.origin)

    @property
    def picture_after_sound(self) -> float | None:
        """Seconds the picture starts after the sound (negative: before it); None unless both exist."""
        if self.video_start is None or self.audio_start is None:
            return None
        return self.video_offset - self.audio_offset

    @property
    def overlap(self) -> tuple[float, float] | None:
        """(start, end) in seconds on the timeline where both picture and sound play; None
        unless the file has both."""
        if self.video_start is None or self.audio_start is None:
            return None
        start = max(self.video_start, self.audio_start) - self.origin
        end = min(self.video_end, self.audio_end) - self.origin
        return start, max(start, end)


def _offset(start: float | None, origin: float) -> float:
    if start is None or start - origin < NEGLIGIBLE_S:
        return 0.0
    return start - origin


def media_clock(path: str | Path) -> MediaClock:
    """The clock of a media file (cached by path, size and modification time).

    Raises:
        InputError: the file's picture and sound do not overlap at all (a stream that starts
            past the other's end): no player can show them together.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        stat = None
    clock = _measure(str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1)
    if clock.overlap is not None and clock.overlap[1] - clock.overlap[0] <= 0:
        raise InputError(
            f"the picture and the sound of {path} do not overlap: the picture plays "
            f"{_span(clock.video_start, clock.video_end, clock.origin)} and the sound "
            f"{_span(clock.audio_start, clock.audio_end, clock.origin)}; the file's timestamps are broken. "
            "Export it again from the editor or phone, or give the picture and the sound as separate files"
        )
    return clock


def _span(start: float, end: float, origin: float) -> str:
    return f"from {start - origin:.2f} s to {end - origin:.2f} s"


@functools.lru_cache(maxsize=64)
def _measure(path: str, size: int, mtime_ns: int) -> MediaClock:
    from talkface.media.probe import open_media

    with open_media(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        container_end = _container_end(container)
        firsts = _first_times(container, [s for s in (video, audio) if s is not None])
        video_start = firsts.get(video.index) if video is not None else None
        audio_start = firsts.get(audio.index) if audio is not None else None
        return MediaClock(
            video_start,
            _stream_end(video, video_start, container_end) if video is not None else None,
            audio_start,
            _stream_end(audio, audio_start, container_end) if audio is not None else None,
        )


FIRST_PACKETS = 2000  # packets read from the start to find each stream's first frame


def _first_times(container, streams: list) -> dict[int, float]:
    """Each stream's first decoded frame's presentation time (seconds), from one pass over the
    file's start: what the readers get as their first picture or sample (decoders drop priming
    samples and apply edit lists). A stream with nothing decodable takes its declared start."""
    found: dict[int, float] = {}
    try:
        for count, packet in enumerate(container.demux(*streams)):
            if packet.stream.index in found:
                continue
            for frame in packet.decode():
                if frame.time is not None:
                    found[packet.stream.index] = float(frame.time)
                    break
            if len(found) == len(streams) or count >= FIRST_PACKETS:
                break
    except (av.error.FFmpegError, ValueError):
        pass
    for stream in streams:
        if stream.index not in found:
            declared = stream.start_time is not None and stream.time_base
            found[stream.index] = float(stream.start_time * stream.time_base) if declared else 0.0
    return found


def _container_end(container) -> float | None:
    if not container.duration:
        return None
    return ((container.start_time or 0) + container.duration) / av.time_base


def _stream_end(stream, start: float | None, container_end: float | None) -> float:
    """Where a stream ends (seconds): its start plus its declared duration, else the container's end."""
    start = start or 0.0
    if stream.duration and stream.time_base:
        return start + float(stream.duration * stream.time_base)
    return container_end if container_end is not None else start


def clock_key(path: str | Path) -> list:
    """What a cache key must add for a file whose sound and picture do not start together (its
    frames' and samples' places on the clock); nothing for the usual file, so the caches made
    before the clock existed stay valid for it."""
    after = media_clock(path).picture_after_sound
    return [] if after is None or abs(after) < NEGLIGIBLE_S else ["clock", round(after, 4)]
