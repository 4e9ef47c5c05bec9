"""Files whose sound and picture keep other clocks, made in the test from the shipped clip with PyAV:
picture or sound starting late, an edit list on both, negative starts, a variable frame rate, a
rotation flag. Remuxed packets where possible, so each picture is the clip's own, bit for bit."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def remux(source: Path, out: Path, video_shift: float = 0.0, audio_shift: float = 0.0, rotation: int = 0, fmt: str | None = None) -> Path:
    """`source`'s packets, unchanged, with the video's timestamps moved by `video_shift` seconds and
    the audio's by `audio_shift` (an mp4 records a late start as an edit list); `rotation`: a
    display rotation (degrees counter-clockwise) put on the video stream."""
    with av.open(str(source)) as inp, av.open(str(out), "w", format=fmt) as output:
        streams = {}
        for stream, shift in ((inp.streams.video[0], video_shift), (inp.streams.audio[0], audio_shift)):
            made = output.add_stream_from_template(stream)
            if rotation and stream.type == "video":
                made.set_display_rotation(rotation)
            streams[stream.index] = (made, int(round(shift / stream.time_base)))
        for packet in inp.demux():
            if packet.dts is None or (packet.stream.type == "audio" and packet.pts < 0):
                continue  # the AAC priming packet, which the source's own edit list hides
            made, shift = streams[packet.stream.index]
            packet.pts += shift
            packet.dts += shift
            packet.stream = made
            output.mux(packet)
    return out


def encode_at(frames: list[np.ndarray], times: list[float], samples: np.ndarray, sample_rate: int, out: Path, audio_start: float = 0.0) -> Path:
    """Frames shown at the given times (seconds; a variable frame rate), the sound from
    `audio_start` seconds, as H.264 + AAC mp4."""
    with av.open(str(out), "w") as output:
        video = output.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        video.codec_context.time_base = Fraction(1, 90000)
        video.options = {"crf": "12", "bf": "0"}
        audio = output.add_stream("aac", rate=sample_rate, layout="mono")
        for time, image in zip(times, frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(round(time * 90000)), Fraction(1, 90000)
            for packet in video.encode(frame):
                output.mux(packet)
        for packet in video.encode():
            output.mux(packet)
        first = int(round(audio_start * sample_rate))
        for start in range(0, len(samples) - 1023, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, first + start
            for packet in audio.encode(frame):
                output.mux(packet)
        for packet in audio.encode():
            output.mux(packet)
    return out
