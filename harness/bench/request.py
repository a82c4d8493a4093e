"""What one benchmark run is asked to do, as one value.

The CLI, the pytest plugin and nightly each build a :class:`BenchRequest` once;
:meth:`BenchRequest.resolved` fills the defaults that depend on other fields and checks
every value in one place; the run manifest stores it (``run.json`` ``request``) so that
``--resume`` rebuilds exactly the request the run started with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.link.protocol import Protocol

DEFAULT_BOARD = "nano33"
#: Seconds without progress on the link after which a run fails (``--watchdog``).
DEFAULT_WATCHDOG_S = 60.0


def known_backends() -> list[str]:
    """The backend names a request may give (for checks made before any run, e.g. a matrix)."""
    from harness.devices import backend_names

    return backend_names()


def default_backend(port: str | None) -> str:
    """A port means a real board on it; without one the simulated board stands in."""
    return "serial" if port else "sim"


def default_warmups(backend: str) -> int:
    """One warm-up on real and emulated boards (caches, lazy init); none on the sim.

    The sim's cycles are an estimate from the cost model, the same on every call, so a
    warm-up there would only double the time of a run.
    """
    return 0 if backend == "sim" else 1


@dataclass(frozen=True)
class BenchRequest:
    """One benchmark: which board and device, which model and data, how to measure, where to write.

    ``backend=None`` means "serial when a port is given, else sim"; ``warmups=None`` means
    the backend's default; ``model=None`` and ``data=None`` mean the defaults the bench
    resolves (the default model, the smoke set). ``resume`` names a run (id or folder) to
    finish instead of starting a new one.
    """

    board: str = DEFAULT_BOARD
    backend: str | None = None
    protocol: Protocol = Protocol.V1
    model: str | None = None
    data: str | None = None
    split: str | None = None
    limit: int | None = None
    threshold: float = 0.5
    #: which output element is the person score; None: 1 of two outputs, 0 of one
    person_index: int | None = None
    warmups: int | None = None
    repeats: int = 1
    out_dir: Path | None = None
    resume: str | None = None
    port: str | None = None
    baud: int | None = None
    watchdog: float = DEFAULT_WATCHDOG_S
    #: a board-farm place (name, or tags such as ``board=nano33``) whose serial port to use
    place: str | None = None
    #: the labgrid coordinator of ``place`` (None: ``LG_COORDINATOR``, else labgrid's default)
    coordinator: str | None = None
    #: seconds to wait for the place when it is busy
    place_wait: float = 0.0

    def resolved(self) -> BenchRequest:
        """This request with backend and warm-ups decided and every value checked."""
        protocol = Protocol.parse(self.protocol)
        backend = self.backend or default_backend(self.port or self.place)
        if self.place is not None:
            if self.port is not None:
                raise ConfigError("--place and --port both say where the board is: give one")
            if backend != "serial":
                raise ConfigError(f"--place reaches a board over its serial port; it does not go with "
                                  f"--backend {backend}")
        if self.place_wait < 0:
            raise ConfigError(f"--place-wait must be 0 or more seconds, not {self.place_wait}")
        warmups = default_warmups(backend) if self.warmups is None else int(self.warmups)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, not {self.limit}")
        if warmups < 0:
            raise ConfigError(f"--warmups must be 0 or more, not {warmups}")
        if self.repeats < 1:
            raise ConfigError(f"--repeats must be at least 1, not {self.repeats}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"--threshold must be between 0 and 1, not {self.threshold}")
        if self.baud is not None and self.baud <= 0:
            raise ConfigError(f"--baud must be a positive rate, not {self.baud}")
        if not self.board:
            raise ConfigError("--board must name a board profile")
        if not self.watchdog > 0:
            raise ConfigError(f"--watchdog must be a positive number of seconds, not {self.watchdog}")
        return replace(self, backend=backend, warmups=warmups, protocol=protocol)

    def to_dict(self) -> dict[str, Any]:
        """The request as run.json stores it (paths as strings, the protocol by name)."""
        d = asdict(self)
        d["protocol"] = Protocol.parse(self.protocol).value
        d["out_dir"] = str(self.out_dir) if self.out_dir is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchRequest:
        """A request read back from run.json; unknown keys (from newer versions) are ignored."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if known.get("out_dir") is not None:
            known["out_dir"] = Path(known["out_dir"])
        if "protocol" in known:
            known["protocol"] = Protocol.parse(known["protocol"])
        try:
            return cls(**known)
        except TypeError as exc:
            raise ConfigError(f"run.json holds a request this version cannot read: {exc}") from None

    @classmethod
    def from_manifest(cls, m: dict[str, Any]) -> BenchRequest:
        """The request a run was started with: its ``request`` record, or (runs written before
        requests were stored) the board, backend, model, data and settings it recorded."""
        stored = m.get("request")
        if isinstance(stored, dict):
            return cls.from_dict(stored)
        s = m.get("settings") or {}
        return cls(
            board=(m.get("board") or {}).get("id", DEFAULT_BOARD),
            backend=m.get("backend"),
            protocol=Protocol.parse(m.get("protocol") or Protocol.V1.value),
            model=(m.get("model") or {}).get("path"),
            data=(m.get("dataset") or {}).get("path"),
            split=s.get("split"),
            limit=s.get("limit"),
            threshold=float(s.get("threshold", 0.5)),
            person_index=s.get("person_index"),
            warmups=s.get("warmups"),
            repeats=int(s.get("repeats", 1)),
        )
