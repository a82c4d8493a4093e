"""A small labgrid lab on 127.0.0.1, for the farm tests.

Everything is real: labgrid's coordinator and exporters (run from the installed labgrid,
as a lab runs them), Debian's ser2net started by the exporters, and devices served on
pseudo-terminals by ``hil serve`` (the sim, or the native firmware). The exporter starts
ser2net listening on every address; the tests put a ``ser2net`` first on the exporters'
PATH that binds its accepter to 127.0.0.1 and otherwise runs the real one, so that
nothing is reachable from outside this machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.skip_groups import LABGRID, SER2NET, needs

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def ser2net_path() -> str | None:
    found = shutil.which("ser2net")
    if found:
        return found
    return "/usr/sbin/ser2net" if os.path.isfile("/usr/sbin/ser2net") else None


def missing() -> str | None:
    """Why the lab cannot run here, or None."""
    try:
        import labgrid.remote.client  # noqa: F401
    except ImportError:
        return needs(LABGRID, "labgrid is not installed (pip install -e '.[farm]')")
    if ser2net_path() is None:
        return needs(SER2NET, "ser2net is not installed (apt-get install ser2net)")
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


def _wait_for(check: object, what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout_s:g} s")


@dataclass
class Served:
    """A device on a pseudo-terminal (``hil serve``), reachable through ``link``."""

    proc: subprocess.Popen[bytes]
    link: Path
    log: Path

    @property
    def pty(self) -> str:
        return os.path.realpath(self.link)


@dataclass
class Exporter:
    name: str
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class Lab:
    """The coordinator, exporters and served devices of one test module."""

    root: Path
    coordinator_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    exporters: dict[str, Exporter] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.coordinator_port}"

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.Popen[bytes]:
        fh = open(log, "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=_env(env),
                                cwd=cwd or self.root, start_new_session=True)
        fh.close()
        self.procs.append(proc)
        return proc

    def start_coordinator(self) -> None:
        log = self.root / "coordinator.log"
        self._spawn([sys.executable, "-c", "from labgrid.remote.coordinator import main; main()",
                     "--listen", self.address], log)
        _wait_for(lambda: "Coordinator ready" in log.read_text(errors="replace"), "coordinator start")

    def serve(self, name: str, backend: str = "sim", extra: list[str] | None = None) -> Served:
        link = self.root / f"{name}.pty"
        log = self.root / f"serve-{name}.log"
        proc = self._spawn([sys.executable, "-c", "import sys; from harness.cli import main; "
                            "sys.exit(main(sys.argv[1:]))", "serve", "--backend", backend,
                            "--link", str(link), *(extra or [])], log)
        _wait_for(lambda: "ready" in log.read_text(errors="replace") or proc.poll() is not None,
                  f"hil serve {backend}", timeout_s=600.0 if backend != "sim" else START_TIMEOUT_S)
        if proc.poll() is not None:
            raise RuntimeError(f"hil serve {backend} exited: {log.read_text(errors='replace')[-500:]}")
        return Served(proc, link, log)

    def _ser2net_wrapper(self) -> Path:
        bindir = self.root / "bin"
        bindir.mkdir(exist_ok=True)
        wrapper = bindir / "ser2net"
        wrapper.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            # the real ser2net, its accepter bound to {HOST} instead of every address
            for a in "$@"; do
              case "$a" in
                *"accepter: telnet(rfc2217,mode=server),tcp,"*)
                  set -- "$@" "$(printf '%s' "$a" | sed 's/,tcp,/,tcp,{HOST},/')" ;;
                *) set -- "$@" "$a" ;;
              esac
              shift
            done
            exec {ser2net_path()} "$@"
            """))
        wrapper.chmod(0o755)
        return bindir

    def add_exporter(self, name: str, resources: str) -> Exporter:
        config = self.root / f"exporter-{name}.yaml"
        config.write_text(resources)
        exp = Exporter(name, config, self.root / f"exporter-{name}.log")
        self.exporters[name] = exp
        self.start_exporter(name)
        return exp

    def start_exporter(self, name: str) -> None:
        exp = self.exporters[name]
        bindir = self._ser2net_wrapper()
        exp.proc = self._spawn(
            [sys.executable, "-c", "from labgrid.remote.exporter import main; main()",
             "--coordinator", self.address, "--name", name, "--hostname", HOST, str(exp.config)],
            exp.log, env={"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"})
        size = exp.log.stat().st_size if exp.log.exists() else 0
        _wait_for(lambda: "connected to coordinator" in exp.log.read_text(errors="replace")[size:]
                  or "Exporter ready" in exp.log.read_text(errors="replace")[size:], f"exporter {name}")
        time.sleep(0.5)  # its resources reach the coordinator right after

    def signal_exporter(self, name: str, sig: int) -> None:
        """Signal the exporter; with ``group`` semantics for SIGSTOP/SIGCONT (ser2net too)."""
        proc = self.exporters[name].proc
        assert proc is not None
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            os.killpg(proc.pid, sig)  # the whole host: exporter and its ser2net children
        else:
            proc.send_signal(sig)

    def stop_exporter(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.exporters[name].proc
        assert proc is not None
        proc.send_signal(sig)
        proc.wait(10)
        if sig == signal.SIGKILL:
            # its ser2net children outlive it (as on a real host); end them for the next start
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def create_place(self, name: str, matches: list[str], tags: dict[str, str]) -> None:
        from harness.farm.client import connected

        with connected(self.address) as client:
            client.add_place(name, matches, tags)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def serial_resources(group: str, pty: str) -> str:
    return f"{group}:\n  RawSerialPort:\n    port: {pty}\n    speed: 115200\n"
