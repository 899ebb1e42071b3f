"""ecem.prefetch: order, bounded look-ahead, failures raised in the consumer, early stops that
leave no thread running."""

from __future__ import annotations

import threading
import time

import pytest

from ecem.prefetch import map_ahead, prefetch


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_prefetch_yields_every_item_in_order():
    assert list(prefetch(range(50), depth=2)) == list(range(50))


def test_prefetch_of_nothing_is_empty():
    assert list(prefetch([], name="pf-empty")) == []
    assert not _threads("pf-empty")


def test_prefetch_raises_the_producers_exception_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise KeyError("broken source")

    got = []
    with pytest.raises(KeyError, match="broken source"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_prefetch_works_at_most_depth_items_ahead():
    made = []

    def items():
        for k in range(100):
            made.append(k)
            yield k

    stream = prefetch(items(), depth=3, name="pf-ahead")
    assert next(stream) == 0
    time.sleep(0.2)  # let the producer run as far as the queue allows
    assert len(made) <= 1 + 3 + 1  # the one taken, a full queue, one waiting to be put
    stream.close()


def test_prefetch_closed_early_stops_and_closes_the_producer():
    closed = threading.Event()

    def items():
        try:
            for k in range(10_000):
                yield k
        finally:
            closed.set()

    stream = prefetch(items(), depth=2, name="pf-early")
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert closed.is_set() and not _threads("pf-early")


def test_prefetch_consumer_failure_stops_the_producer():
    def items():
        k = 0
        while True:  # never ends on its own
            yield k
            k += 1

    with pytest.raises(RuntimeError, match="consumer"):
        for item in prefetch(items(), depth=1, name="pf-fail"):
            if item == 5:
                raise RuntimeError("consumer")
    assert not _threads("pf-fail")


def test_prefetch_rejects_a_depth_below_one():
    with pytest.raises(ValueError, match="depth"):
        next(prefetch([1], depth=0))


def test_map_ahead_keeps_input_order_whatever_finishes_first():
    def slow_for_small(k: int) -> int:
        time.sleep(0.01 * (5 - k % 5))
        return k * k

    assert list(map_ahead(slow_for_small, range(20), workers=4)) == [k * k for k in range(20)]


def test_map_ahead_of_nothing_is_empty():
    assert list(map_ahead(lambda k: k, [], workers=3)) == []


def test_map_ahead_submits_at_most_two_per_worker_ahead():
    started = []
    lock = threading.Lock()

    def record(k: int) -> int:
        with lock:
            started.append(k)
        return k

    stream = map_ahead(record, range(100), workers=2)
    assert next(stream) == 0
    time.sleep(0.1)
    assert len(started) <= 1 + 2 * 2
    stream.close()


def test_map_ahead_raises_a_failure_in_its_turn():
    def fail_on_three(k: int) -> int:
        if k == 3:
            raise OSError("bad item 3")
        return k

    got = []
    with pytest.raises(OSError, match="bad item 3"):
        for value in map_ahead(fail_on_three, range(10), workers=3):
            got.append(value)
    assert got == [0, 1, 2]


def test_map_ahead_closed_early_cancels_what_has_not_started():
    started = []

    def record(k: int) -> int:
        started.append(k)
        time.sleep(0.01)
        return k

    stream = map_ahead(record, range(1000), workers=1, name="ma-early")
    assert next(stream) == 0
    stream.close()
    assert len(started) <= 3 and not _threads("ma-early")
