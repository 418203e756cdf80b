"""Items made on a thread ahead of their use: same items, same order, errors where they arise."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from b12lab._io.prefetch import prefetched


def test_items_come_in_order_and_all() -> None:
    with prefetched(iter(range(1000))) as items:
        assert list(items) == list(range(1000))


def test_no_items() -> None:
    with prefetched(iter([])) as items:
        assert list(items) == []
        assert list(items) == []


def test_an_error_is_raised_where_its_item_is_asked_for() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("third item unreadable")

    seen = []
    with prefetched(items()) as made, pytest.raises(ValueError, match="third"):  # noqa: PT012
        for item in made:
            seen.append(item)
    assert seen == [1, 2]


def test_at_most_one_item_is_made_ahead() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for item in range(10):
            made.append(item)
            yield item

    with prefetched(items()) as taken:
        first = next(taken)
        _wait_until(lambda: len(made) == 2)
        assert (first, made) == (0, [0, 1])  # the next one, and no more


def test_leaving_early_stops_making_and_closes_the_items() -> None:
    closed = threading.Event()
    made: list[int] = []

    def items() -> Iterator[int]:
        try:
            for item in range(1000):
                made.append(item)
                yield item
        finally:
            closed.set()

    with prefetched(items()) as taken:
        assert next(taken) == 0
    assert closed.is_set()
    assert len(made) <= 2
    assert not any(t.name == "b12lab-reader" for t in threading.enumerate())


def test_an_error_in_the_caller_stops_the_thread() -> None:
    def use() -> None:
        with prefetched(iter(range(100))) as taken:
            next(taken)
            raise KeyError("caller")

    with pytest.raises(KeyError):
        use()
    assert not any(t.name == "b12lab-reader" for t in threading.enumerate())


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    event = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("the condition never held")
