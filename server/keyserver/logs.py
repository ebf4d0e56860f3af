"""Logging set-up for the server process (the entry point's only)."""

from __future__ import annotations

import logging
import sys
import threading
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


#: The logger of the one-line-per-RPC records, the only ones kept buffered.
RPC_LOGGER = "keyserver.interceptors"


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes the per-RPC log lines to stderr through a buffer.

    StreamHandler flushes after every record, and for the line logged per RPC
    that write system call was a visible share of a cheap RPC's cost. Those
    lines reach stderr at most `interval` seconds late; every other record
    (start-up, shutdown, warnings, errors) is written at once.
    """

    def __init__(self, interval: float = 0.2) -> None:
        stream = open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False)
        super().__init__(stream)
        self._stopped = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_every, args=(interval,), name="log-flush", daemon=True
        )
        self._flusher.start()

    def flush(self) -> None:
        """Do nothing: emit() calls this after every line; _flush_now writes."""

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.name != RPC_LOGGER or record.levelno >= logging.WARNING:
            self._flush_now()

    def _flush_now(self) -> None:
        with self.lock or threading.RLock():
            if not self.stream.closed:
                self.stream.flush()

    def _flush_every(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self._flush_now()

    def close(self) -> None:
        self._stopped.set()
        self._flush_now()
        self.stream.close()
        super().close()


class SecondCachingFormatter(logging.Formatter):
    """logging.Formatter whose `asctime` formats each second only once.

    The per-RPC line is the record logged most; strftime and localtime were a
    quarter of its cost. The output is the default `2026-12-03 20:55:16,713`.
    """

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached, text = self._second
        if cached != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"


def configure(level: str) -> None:
    """Send every log record at `level` or above to stderr, buffered."""
    # The format names no thread, process or source line, so the records need
    # not collect them (the "Optimization" knobs of the logging HOWTO).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = BufferedStderrHandler()
    handler.setFormatter(SecondCachingFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
