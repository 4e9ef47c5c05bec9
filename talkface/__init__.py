"""talkface: audio-driven talking-face video, personalised from a short clip, offline.

Library API (the CLI is a thin layer over these):
    track(video, out)   track the face, reconstruct it in 3D, write an overlay video.
"""

__version__ = "0.1.0"

from talkface.track import TrackResult, TrackSummary, track  # noqa: E402

__all__ = ["TrackResult", "TrackSummary", "__version__", "track"]
