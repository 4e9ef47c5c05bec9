"""Overlapping the stages of a frame pipeline: frames are made in one thread while another encodes.

Rendering, refining and encoding each spend much of their time in native code that releases
the GIL (PyTorch, OpenCV, x264), so making frame t+1 while frame t is encoded keeps both
cores busy instead of taking turns.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_DONE = object()
POLL_S = 0.1  # how often a blocked producer checks whether the consumer has gone


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Yield `items` in order, computed ahead by a background thread (at most `depth` waiting).

    An exception raised while making an item is raised here, in the consumer, at that item's
    place. When the consumer stops early (an error, an interrupt, or it simply stops
    iterating), the producer stops after its current item and its source is closed.

    The producer is not a daemon thread, and it also stops once the main thread has finished:
    SIGTERM's SystemExit can arrive at any point of the consumer, also before its `finally`
    could join the producer, and a daemon thread still inside native code when the interpreter
    shuts down is unwound by force (OpenCV and PyTorch then abort the process: "terminate
    called without an active exception"). The interpreter waits for non-daemon threads first.
    """
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None  # a new thread starts with every core

    def produce() -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        source = iter(items)
        try:
            for item in source:
                if not _put(waiting, item, stop):
                    return
            _put(waiting, _DONE, stop)
        except BaseException as error:  # handed to the consumer, which raises it
            _put(waiting, _Failure(error), stop)
        finally:
            close = getattr(source, "close", None)
            if close is not None and stop.is_set():
                try:
                    close()
                except Exception:  # the consumer's own error is the one that matters
                    pass

    worker = threading.Thread(target=produce, name="talkface-frames")
    try:
        worker.start()
        while True:
            item = _get(waiting, worker)
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()  # it stops within its current item: never two threads on one source


def _get(waiting: queue.Queue, worker: threading.Thread):
    """The next item; a producer that stopped without one means the program is ending."""
    while True:
        try:
            return waiting.get(timeout=POLL_S)
        except queue.Empty:
            if not worker.is_alive() and waiting.empty():
                raise RuntimeError("the frame producer stopped: the program is ending") from None


def _put(waiting: queue.Queue, item, stop: threading.Event) -> bool:
    """Queue an item unless the consumer, or the whole program, has stopped; False if so."""
    while not stop.is_set() and threading.main_thread().is_alive():
        try:
            waiting.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            continue
    return False


@contextlib.contextmanager
def pipeline_threads() -> Iterator[None]:
    """PyTorch's own thread count while a frame pipeline runs, restored after.

    The pipeline's stages already keep the cores busy in parallel; PyTorch splitting each small
    operation over every core on top of that makes its threads wait on each other (on 2 cores,
    refined `speak` ran 20% faster with one PyTorch thread). So it gets the cores the pipeline's
    other two threads leave, at least one. The setting is per thread: `prefetched` passes the
    creating thread's on to the threads it starts.

    NumPy's BLAS (OpenBLAS) runs on one thread meanwhile (threadpoolctl; process-wide, restored
    after): the head warp's small matrix products woke its pool for every frame, whose threads
    then spun waiting for more (sched_yield), taking the cores from the pipeline's own threads.
    On 2 cores, refined `speak` with the head turned (a 512² newsreader) ran 29.5 -> 33 frames/s.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 2))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)
