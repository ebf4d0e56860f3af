"""Clocks: the service reads time through one so tests can control it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

_EPOCH = dt.datetime(1970, 1, 1)


def utcnow() -> dt.datetime:
    """Return the current UTC time, naive, truncated to milliseconds."""
    # Milliseconds are what the legacy JSON shows (`...26.912Z`) and what every
    # backend stores exactly, so a value reads back equal to what was written.
    # Built from the epoch: Verify reads the clock on every call, and
    # datetime.now(UTC) with two replace() calls cost several times this.
    return _EPOCH + dt.timedelta(milliseconds=time.time_ns() // 1_000_000)


class Clock(Protocol):
    """A source of the current time as a naive UTC datetime."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return utcnow()


class FakeClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or utcnow()

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)

    def set(self, when: dt.datetime) -> None:
        self._now = when
