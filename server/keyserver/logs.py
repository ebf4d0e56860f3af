"""Logging set-up for the server process (the entry point's only)."""

from __future__ import annotations

import logging
import sys
import threading

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


def configure(level: str) -> None:
    """Send every log record at `level` or above to stderr, buffered."""
    handler = BufferedStderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
