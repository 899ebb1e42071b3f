"""Iterators that work ahead of their consumer on other threads.

A stage that decodes media and runs a model wants the decoding done while the model runs, yet
its output in a fixed order (so reruns write the same bytes) and its memory bounded (a few items
ahead, never a whole shard). :func:`map_ahead` computes `fn(item)` on a pool of threads, a few
items ahead, and yields the results in input order; :func:`prefetch` drains any iterator on a
background thread into a bounded queue. Both re-raise a failure in the consumer and, when the
consumer stops early, stop their threads before they return (no work is left running).
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()  # the producer's iterator is exhausted


class _Raised:
    """An exception of the producer thread, carried to the consumer to be raised there."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 3, name: str = "prefetch") -> Iterator[T]:
    """Yield `items` as a background thread produces them, at most `depth` ahead.

    The thread starts at the first `next()`. An exception raised while producing an item is
    raised here, in the consumer, after the items produced before it. When the consumer stops
    early (closes the generator, or an exception leaves its loop), the producer is told to stop,
    its iterator is closed in its own thread (so its `finally` blocks run) and the thread is
    joined before this generator returns; an item being produced then is finished first.
    """
    if depth < 1:
        raise ValueError(f"prefetch depth must be at least 1, got {depth}")
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if stop.is_set():
                    break
                buffer.put(item)
            else:
                buffer.put(_END)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            buffer.put(_Raised(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)


def map_ahead(fn: Callable[[T], R], items: Iterable[T], workers: int = 1,
              name: str = "map-ahead") -> Iterator[R]:
    """Yield `fn(item)` for each item, in input order, computed by `workers` threads.

    At most `2 * workers` items are submitted ahead of the one being yielded, so results wait in
    memory only that far ahead. An exception of `fn` is raised when its item's turn comes. On an
    early stop the items not started are cancelled and the running ones finished before this
    generator returns.
    """
    workers = max(1, int(workers))
    source = iter(items)
    pending: collections.deque[Future[R]] = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:

        def submit_next() -> None:
            item = next(source, _END)
            if item is not _END:
                pending.append(pool.submit(fn, item))

        try:
            for _ in range(2 * workers):
                submit_next()
            while pending:
                future = pending.popleft()
                submit_next()
                yield future.result()
        finally:
            for future in pending:
                future.cancel()
