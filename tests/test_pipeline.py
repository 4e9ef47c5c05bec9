"""prefetched(): frames made in a background thread, in order, with errors and early stops handled."""

from __future__ import annotations

import threading
import time

import pytest

from talkface.pipeline import prefetched


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
