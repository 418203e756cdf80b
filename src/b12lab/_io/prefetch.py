"""The next item of an iterator, made on a thread of its own while the caller uses the current one.

Reading a chunk of a file (the record scan, arrow's parse) mostly runs without the GIL, as does
writing one; classifying holds it more. With the next chunk read while this one is classified
and the last one written, the three overlap on a machine with two cores or more.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["prefetched"]

_Item = TypeVar("_Item")


class _Prefetched(Generic[_Item]):
    """At most one item made ahead; an error making one is raised where that item is asked for."""

    def __init__(self, items: Iterable[_Item], name: str) -> None:
        self._items = iter(items)
        self._made: queue.Queue[tuple[bool, _Item | BaseException | None]] = queue.Queue()
        self._wanted = threading.Semaphore(1)
        self._stopped = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._make, name=name, daemon=True)
        self._thread.start()

    def _make(self) -> None:
        while True:
            self._wanted.acquire()
            if self._stopped.is_set():
                return
            try:
                item = next(self._items)
            except StopIteration:
                self._made.put((True, None))
                return
            except BaseException as exc:  # the caller's to see, where it asks for this item
                self._made.put((True, exc))
                return
            self._made.put((False, item))

    def __iter__(self) -> Iterator[_Item]:
        return self

    def __next__(self) -> _Item:
        if self._ended:
            raise StopIteration
        ended, item = self._made.get()
        if ended:
            self._ended = True
            if isinstance(item, BaseException):
                raise item
            raise StopIteration
        self._wanted.release()  # the next one is made while this one is used
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop making items (after the one being made) and close the iterator."""
        self._stopped.set()
        self._wanted.release()
        self._thread.join()
        close = getattr(self._items, "close", None)
        if callable(close):
            close()


@contextmanager
def prefetched(items: Iterable[_Item], name: str = "b12lab-reader") -> Iterator[Iterator[_Item]]:
    """``items``, each made on a thread while the one before is used; stopped on leaving."""
    made = _Prefetched(items, name)
    try:
        yield made
    finally:
        made.close()
