"""Media I/O: probe, decode at 25 fps / 16 kHz mono, encode H.264 + AAC mp4."""

from talkface.media.audio import Audio, load_audio, write_audio
from talkface.media.destination import check_destination
from talkface.media.probe import MediaInfo, probe, require_audio, require_video
from talkface.media.video import read_frames, read_frames_at, write_video

__all__ = [
    "Audio",
    "check_destination",
    "MediaInfo",
    "load_audio",
    "probe",
    "read_frames",
    "read_frames_at",
    "require_audio",
    "require_video",
    "write_audio",
    "write_video",
]
