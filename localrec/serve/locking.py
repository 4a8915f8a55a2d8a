"""Many readers at once, or one writer alone: how requests share one `Recommender`.

A `Recommender` may serve several threads (its encoder runs one batch at a time under its
own lock), but its database connection is shared too. Reads may overlap. A write (record,
forget) runs alone: `forget` ends with a VACUUM, which SQLite refuses while any statement
of the connection is running, and an event must not be half-seen by a list computed while
it is being stored. A waiting writer goes before readers that arrive after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ReadWriteLock"]


class ReadWriteLock:
    """Shared for reads, exclusive for writes; writers are not starved by a stream of reads."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
