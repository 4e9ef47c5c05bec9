"""prefetched(): frames made in a background thread, in order, with errors and early stops handled."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from talkface.pipeline import pipeline_threads, prefetched


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_a_pipeline_holds_numpys_blas_to_one_thread_and_gives_it_back():
    import torch

    blas_before, torch_before = _blas_threads(), torch.get_num_threads()
    assert blas_before  # NumPy's OpenBLAS is loaded
    with pipeline_threads():
        assert _blas_threads() == [1] * len(blas_before)
        np.ones((300, 300)) @ np.ones((300, 300))  # still computes
    assert _blas_threads() == blas_before
    assert torch.get_num_threads() == torch_before


def test_items_arrive_in_order_and_are_made_ahead():
    made = []

    def source():
        for index in range(50):
            made.append(index)
            yield index

    stream = prefetched(source(), depth=4)
    assert next(stream) == 0
    time.sleep(0.2)
    assert len(made) >= 4  # the producer ran ahead while the consumer waited
    assert [0, *stream] == list(range(50))


def test_an_error_while_making_an_item_is_raised_at_its_place():
    def source():
        yield 1
        yield 2
        raise ValueError("frame 3 is broken")

    seen = []
    with pytest.raises(ValueError, match="frame 3"):
        for item in prefetched(source()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_and_closes_the_producer():
    closed = threading.Event()
    made = []

    def source():
        try:
            for index in range(10_000):
                made.append(index)
                yield index
        finally:
            closed.set()

    stream = prefetched(source(), depth=2)
    with pytest.raises(RuntimeError):
        try:
            for item in stream:
                if item == 3:
                    raise RuntimeError("the encoder failed")
        finally:
            stream.close()  # as write_video does
    assert closed.wait(5)
    assert len(made) < 20  # it did not run on through the whole source
    assert not any(t.name == "talkface-frames" and t.is_alive() for t in threading.enumerate())


def test_an_empty_source_ends_at_once():
    assert list(prefetched(iter(()))) == []


# a program whose two nested frame pipelines spend their time in OpenCV, as dub's and speak's do
PIPELINES = """
import signal, sys
import numpy as np, cv2
from talkface.pipeline import prefetched

def terminated(signum, frame):
    raise SystemExit(143)

signal.signal(signal.SIGTERM, terminated)
image = np.random.default_rng(0).random((480, 640, 3), dtype=np.float32)

def blurred():
    while True:
        yield cv2.GaussianBlur(image, (0, 0), 5)

def passed_on():
    stream = prefetched(blurred(), depth=2)
    try:
        yield from stream
    finally:
        stream.close()

print("ready", flush=True)
if sys.argv[1] == "leave":  # a pipeline left open when the program ends
    kept = prefetched(passed_on(), depth=2)
    next(kept)
    sys.exit(0)
while True:
    stream = prefetched(passed_on(), depth=2)
    next(stream), next(stream)
    stream.close()
"""


def _start(mode: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", PIPELINES, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n", process.stderr.read()
    return process


def test_sigterm_at_any_moment_ends_the_program_cleanly():
    """SystemExit from SIGTERM lands anywhere in the consumer (also while it starts or joins
    its producer); the producers then finish their item and the program exits 143, never
    aborting because a thread was still inside OpenCV at shutdown (it did, 18 times in 40)."""
    for delay in np.linspace(0.05, 0.6, 10):
        process = _start("loop")
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        assert code == 143, f"after {delay:.2f} s: exit {code}: {process.stderr.read()[-500:]}"


def test_a_pipeline_left_open_does_not_keep_the_program_alive():
    process = _start("leave")
    assert process.wait(30) == 0, process.stderr.read()[-500:]
