"""Clocks: the service reads time through one so tests can control it."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


def utcnow() -> dt.datetime:
    """Return the current UTC time, naive, truncated to milliseconds."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # Milliseconds are what the legacy JSON shows (`...26.912Z`) and what every
    # backend stores exactly, so a value reads back equal to what was written.
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


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
