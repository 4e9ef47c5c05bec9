"""Makers of awkward media shared by the fault tests and benchmarks/hardening.py (no blobs shipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """A 32-bit float WAV (format 3), which can hold NaN and infinity."""
    data = samples.astype("<f4").tobytes()
    header = b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    header += (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little")
    header += (rate * 4).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
    path.write_bytes(header + b"data" + len(data).to_bytes(4, "little") + data)
    return path


def faststart_copy(source: Path, target: Path) -> Path:
    """`source` remuxed with its index at the front, as phones and web exports write it."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        for packet in src.demux():
            if packet.dts is not None and packet.stream.index in streams:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    return target
