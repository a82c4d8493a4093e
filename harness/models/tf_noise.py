"""Keep TensorFlow's own log lines out of the user's terminal and pipes.

``TF_CPP_MIN_LOG_LEVEL`` silences TensorFlow's C++ log once its logging is set up, but
TensorFlow 2.21 loads libraries that log before that (absl's "All log messages before
absl::InitializeLog() is called are written to STDERR", then an ``I0000 ... port.cc]
oneDNN custom operations are on`` line), at import and again when training loads more
kernels. They are written by C++ straight to file descriptor 2, past Python's logging.

:func:`quiet_tensorflow` sets the environment variables and Python log levels, and routes
descriptor 2 through a filter thread that drops those informational and warning lines
and passes every other byte on, errors included. Python's own ``sys.stderr`` (the
console's bars and the log) is moved to a copy of the original descriptor first, so a
terminal stays a terminal for the progress bars.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

log = logging.getLogger(__name__)

#: TensorFlow/absl lines that are noise to a user: absl's pre-init notice, and C++ log
#: lines at INFO or WARNING level in absl's (``I0000 00:00:...  123 file.cc:45]``) or
#: TensorFlow's older (``2026-12-07 15:42:54.1: W tensorflow/...``) format
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] )"
)


class _StderrFilter:
    """Descriptor 2 through a pipe whose reader drops :data:`NOISE` lines."""

    def __init__(self) -> None:
        self.original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._read = read_end
        self.dropped = 0
        self._thread = threading.Thread(target=self._pump, name="hil-tf-stderr", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            self._forward(b"".join(ln + b"\n" for ln in lines if not self._noise(ln)))
        if pending and not self._noise(pending):
            self._forward(pending)
        os.close(self._read)

    def _noise(self, line: bytes) -> bool:
        if NOISE.match(line):
            self.dropped += 1
            return True
        return False

    def _forward(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.original, data):]
            except OSError:  # the reader went away: nothing more to show
                return

    def stop(self) -> None:
        """Put descriptor 2 back and let the reader pass on what is still in the pipe."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.original, 2)  # closes the pipe's last write end: the reader sees EOF
        self._thread.join(timeout=5.0)


_filter: _StderrFilter | None = None


def quiet_tensorflow() -> None:
    """Silence TensorFlow's and Keras' log noise for the rest of the process (idempotent).

    Call it before TensorFlow is imported; the error lines TensorFlow prints still show.
    """
    global _filter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module="keras")
    warnings.filterwarnings("ignore", module="tensorflow")
    for name in ("tensorflow", "absl", "keras"):  # retracing notices, "saving as HDF5" notices
        logging.getLogger(name).setLevel(logging.ERROR)
    if _filter is not None or not _can_filter():
        return
    # Python's stderr keeps the real descriptor (a terminal stays a terminal), and the log
    # handlers that hold the old stream follow it
    old = sys.stderr
    new = os.fdopen(os.dup(2), "w", buffering=1, encoding=getattr(old, "encoding", None) or "utf-8",
                    errors="backslashreplace")  # fmt: skip
    old.flush()
    sys.stderr = new
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is old:
            handler.setStream(new)
    _filter = _StderrFilter()
    atexit.register(_stop)


def _can_filter() -> bool:
    """Only where descriptor 2 is a real file, pipe or terminal that Python writes through."""
    try:
        return sys.stderr.fileno() == 2 and os.fstat(2) is not None
    except (AttributeError, OSError, ValueError):  # pytest's capture, a closed stream
        return False


def _stop() -> None:
    global _filter
    if _filter is not None:
        _filter.stop()
        if _filter.dropped:
            log.debug("dropped %d TensorFlow log lines", _filter.dropped)
        _filter = None
