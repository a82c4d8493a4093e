"""Board farms on loopback: benches, a pytest session and a nightly on real labgrid places.

One lab per module (``farm_lab``): a labgrid coordinator, two exporters ("hosts") whose
ser2net serves two pseudo-terminals over RFC 2217 on 127.0.0.1, and two places tagged
``board=nano33``: ``farm-sim`` (the sim) and ``farm-b`` (the native firmware where a
TFLM tree is given with HIL_TFLM_DIR, else a second sim). ``farm-sim`` also has a power
switch (labgrid's ``simplerest`` model against an HTTP server here). Every fault case
leaves the lab as it found it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.skip_groups import TFLM_TREE, needs
from tests.integration import farm_lab

pytestmark = pytest.mark.skipif(farm_lab.missing() is not None, reason=str(farm_lab.missing()))

LIMIT = "4"


class _Relay(BaseHTTPRequestHandler):
    """A network power switch as labgrid's ``simplerest`` model speaks to it."""

    states: dict[int, int] = {}
    log: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = self.path.strip("/").split("/")  # relay/<index>[/<value>]
        index = int(parts[1])
        if len(parts) > 2 and parts[2] != "":
            self.states[index] = int(parts[2])
            self.log.append(f"{index}={parts[2]}")
        body = str(self.states.get(index, 0)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def relay() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((farm_lab.HOST, 0), _Relay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, relay: ThreadingHTTPServer) -> Iterator[farm_lab.Lab]:
    lab = farm_lab.Lab(tmp_path_factory.mktemp("farm"))
    try:
        lab.start_coordinator()
        a = lab.serve("a")
        native = bool(os.environ.get("HIL_TFLM_DIR"))
        b = lab.serve("b", "native" if native else "sim")
        power = (f"power:\n  NetworkPowerPort:\n    model: simplerest\n"
                 f"    host: 'http://{farm_lab.HOST}:{relay.server_address[1]}/relay/{{index}}/{{value}}'\n"
                 f"    index: 0\n")
        lab.add_exporter("hostA", farm_lab.serial_resources("dev", a.pty) + power)
        lab.add_exporter("hostB", farm_lab.serial_resources("dev", b.pty))
        lab.create_place("farm-sim", ["hostA/dev/NetworkSerialPort", "hostA/power/NetworkPowerPort"],
                         {"board": "nano33", "host": "a", "device": "sim"})
        lab.create_place("farm-b", ["hostB/dev/NetworkSerialPort"],
                         {"board": "nano33", "host": "b", "device": "native" if native else "sim"})
        yield lab
    finally:
        lab.close()


def hil(*argv: str, env: dict[str, str] | None = None, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
         *argv], capture_output=True, text=True, timeout=timeout, env=farm_lab._env(env))


def holder(lab: farm_lab.Lab, place: str) -> str | None:
    from harness.farm.client import connected

    with connected(lab.address) as client:
        return client.place(place).acquired


def as_alice(lab: farm_lab.Lab, place: str, action: str) -> None:
    """Another user (another process, as another engineer would be) takes or frees a place."""
    subprocess.run([sys.executable, "-c", "from labgrid.remote.client import main; main()", "-x", lab.address,
                    "-p", place, action], check=True, capture_output=True, timeout=60,
                   env=farm_lab._env({"LG_USERNAME": "alice"}))


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def run_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if (p / "run.json").is_file()]
    return folder


# -- packaging -------------------------------------------------------------------------

def test_the_serial_package_has_a_working_rfc2217_client(lab: farm_lab.Lab) -> None:
    """Whatever installed ``serial`` last (pyserial or labgrid's pyserial-labgrid), its RFC
    2217 client opens the place's port and our device answers through it."""
    import serial

    from harness.farm.lease import hold_place
    from harness.farm.serial_check import rfc2217_client

    info = rfc2217_client()
    assert info.distribution in ("pyserial", "pyserial-labgrid")
    with hold_place("farm-sim", coordinator=lab.address) as lease:
        assert lease.url.startswith("rfc2217://127.0.0.1:") and lease.url.endswith("?ign_set_control")
        with serial.serial_for_url(lease.url, timeout=2.0) as port:
            port.write(b"\x00")  # a frame delimiter: harmless to the device, proves the write path
            assert port.is_open


# -- bench -----------------------------------------------------------------------------

def test_bench_on_a_tagged_place_records_it_and_releases_it(lab: farm_lab.Lab, tmp_path: Path) -> None:
    r = hil("bench", "--place", "board=nano33,host=a", "--coordinator", lab.address,
            "--limit", LIMIT, "--out", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr
    m = manifest(run_folder(tmp_path))
    place = m["place"]
    assert place["name"] == "farm-sim" and place["exporter"] == "hostA"
    assert place["exporter_host"] == "127.0.0.1"
    assert place["resource"] == "hostA/dev/NetworkSerialPort/RawSerialPort"
    assert m["request"]["place"] == "board=nano33,host=a" and m["request"]["port"] is None
    assert m["metrics"]["n_ok"] == int(LIMIT)
    assert holder(lab, "farm-sim") is None


def test_bench_on_the_second_place(lab: farm_lab.Lab, tmp_path: Path) -> None:
    r = hil("bench", "--place", "farm-b", "--coordinator", lab.address, "--limit", LIMIT,
            "--out", str(tmp_path), "--quiet", env={"LG_COORDINATOR": lab.address})
    assert r.returncode == 0, r.stderr
    m = manifest(run_folder(tmp_path))
    assert m["place"]["exporter"] == "hostB" and m["metrics"]["n_ok"] == int(LIMIT)


def test_bench_on_the_native_firmware_place(lab: farm_lab.Lab, tmp_path: Path) -> None:
    if not os.environ.get("HIL_TFLM_DIR"):
        pytest.skip(needs(TFLM_TREE, "no TFLM tree (HIL_TFLM_DIR): farm-b serves a second sim, "
                          "not the native firmware"))
    r = hil("bench", "--place", "board=nano33,device=native", "--coordinator", lab.address,
            "--limit", LIMIT, "--out", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr
    m = manifest(run_folder(tmp_path))
    assert m["place"]["name"] == "farm-b"
    assert not m["device"]["firmware_version"].startswith("sim"), m["device"]
    assert m["latency_source"] != "estimated"


def test_coordinator_from_lg_coordinator(lab: farm_lab.Lab, tmp_path: Path) -> None:
    r = hil("farm", "places", env={"LG_COORDINATOR": lab.address})
    assert r.returncode == 0, r.stderr
    assert "farm-sim" in r.stdout and "farm-b" in r.stdout


# -- faults ----------------------------------------------------------------------------

def test_a_place_held_by_someone_else_is_one_line_naming_the_holder(
    lab: farm_lab.Lab, tmp_path: Path
) -> None:
    as_alice(lab, "farm-sim", "acquire")
    try:
        r = hil("bench", "--place", "farm-sim", "--coordinator", lab.address, "--out", str(tmp_path))
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "place farm-sim is held by" in lines[0] and "/alice" in lines[0], lines
        # a bounded wait ends the same way, saying how long it waited
        started = time.monotonic()
        r = hil("bench", "--place", "board=nano33,host=a", "--place-wait", "1",
                "--coordinator", lab.address, "--out", str(tmp_path))
        assert r.returncode == 2 and "after waiting 1 s" in r.stderr and "alice" in r.stderr
        assert time.monotonic() - started < 30
        # and a wait that outlasts the holder gets the place
        threading.Timer(2.0, as_alice, args=(lab, "farm-sim", "release")).start()
        r = hil("bench", "--place", "farm-sim", "--place-wait", "30", "--coordinator", lab.address,
                "--limit", "1", "--out", str(tmp_path / "waited"), "--quiet")
        assert r.returncode == 0, r.stderr
    finally:
        if holder(lab, "farm-sim"):
            as_alice(lab, "farm-sim", "release")


def test_an_unreachable_coordinator_is_one_line(tmp_path: Path) -> None:
    address = f"{farm_lab.HOST}:{farm_lab.free_port()}"  # nothing listens there
    r = hil("bench", "--place", "board=nano33", "--coordinator", address, "--out", str(tmp_path))
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the labgrid coordinator at {address}" in lines[0], lines


def test_a_place_left_acquired_by_this_user_is_called_stale(lab: farm_lab.Lab, tmp_path: Path) -> None:
    from harness.farm.client import connected

    with connected(lab.address) as me:
        me.acquire("farm-sim")
        try:
            r = hil("bench", "--place", "farm-sim", "--coordinator", lab.address, "--out", str(tmp_path))
        finally:
            me.release("farm-sim")
    assert r.returncode == 2
    assert "already held by you" in r.stderr and "-p farm-sim release" in r.stderr


def _start_bench(lab: farm_lab.Lab, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
         "bench", "--place", "farm-sim", "--coordinator", lab.address, "--limit", "200", "--out", str(out),
         "--quiet", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=farm_lab._env())


def _wait_rows(out: Path, rows: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for journal in out.glob("*/.pending.jsonl"):
            if len(journal.read_text().splitlines()) >= rows:
                return
        time.sleep(0.1)
    raise AssertionError(f"no {rows} rows within {timeout_s} s")


def test_ctrl_c_releases_the_place(lab: farm_lab.Lab, tmp_path: Path) -> None:
    proc = _start_bench(lab, tmp_path)
    _wait_rows(tmp_path, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "resume with" in err
    assert holder(lab, "farm-sim") is None


def test_exporter_killed_mid_run_then_resume_completes(lab: farm_lab.Lab, tmp_path: Path) -> None:
    proc = _start_bench(lab, tmp_path, "--limit", "12")
    _wait_rows(tmp_path, 2)
    killed = time.monotonic()
    lab.stop_exporter("hostA")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert time.monotonic() - killed < 30
    assert "resume" in err.lower()
    folder = run_folder(tmp_path)
    first = manifest(folder)
    kept = first["rows_written"]
    assert holder(lab, "farm-sim") is None
    lab.start_exporter("hostA")  # the place comes back, on a new TCP port
    r = hil("bench", "--resume", str(folder), "--quiet")
    assert r.returncode == 0, r.stderr
    done = manifest(folder)
    assert done["status"] == "complete" and done["metrics"]["n_ok"] == 12
    assert done["place"]["name"] == "farm-sim" and kept >= 2
    assert holder(lab, "farm-sim") is None


def test_a_host_that_stops_answering_trips_the_watchdog(lab: farm_lab.Lab, tmp_path: Path) -> None:
    proc = _start_bench(lab, tmp_path, "--watchdog", "3")
    _wait_rows(tmp_path, 2)
    lab.signal_exporter("hostA", signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        _, err = proc.communicate(timeout=60)
        waited = time.monotonic() - stopped
    finally:
        lab.signal_exporter("hostA", signal.SIGCONT)
        # the coordinator may have dropped the silent exporter meanwhile: restart the "host"
        lab.stop_exporter("hostA")
        lab.start_exporter("hostA")
    assert proc.returncode == 3, err
    assert "watchdog" in err.lower() or "no progress" in err.lower(), err
    assert waited < 30
    assert holder(lab, "farm-sim") is None
    assert manifest(run_folder(tmp_path))["rows_written"] >= 2


def test_an_orphaned_place_is_one_line_naming_its_exporter(lab: farm_lab.Lab, tmp_path: Path) -> None:
    lab.stop_exporter("hostB", signal.SIGKILL)
    try:
        time.sleep(1.0)
        r = hil("bench", "--place", "farm-b", "--coordinator", lab.address, "--out", str(tmp_path))
    finally:
        lab.start_exporter("hostB")
    assert r.returncode in (2, 3), r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "hostB" in lines[0], lines
    assert holder(lab, "farm-b") is None


# -- drivers ---------------------------------------------------------------------------

def test_power_and_reset_through_the_places_driver(lab: farm_lab.Lab) -> None:
    _Relay.log.clear()
    r = hil("farm", "--coordinator", lab.address, "power", "on", "--place", "farm-sim")
    assert r.returncode == 0, r.stderr
    r = hil("farm", "--coordinator", lab.address, "reset", "--place", "farm-sim")
    assert r.returncode == 0, r.stderr
    assert "reset by power cycle" in r.stdout
    assert _Relay.log == ["0=1", "0=0", "0=1"]
    assert holder(lab, "farm-sim") is None


def test_a_place_without_drivers_says_so_in_one_line(lab: farm_lab.Lab, tmp_path: Path) -> None:
    r = hil("farm", "--coordinator", lab.address, "reset", "--place", "farm-b")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no reset or power driver" in lines[0] and "NetworkSerialPort" in lines[0]
    script, firmware = tmp_path / "flash.sh", tmp_path / "fw.bin"
    script.write_text("#!/bin/sh\n")
    firmware.write_bytes(b"\0" * 16)
    r = hil("farm", "--coordinator", lab.address, "flash", str(script), str(firmware), "--place", "farm-b")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no flashable device" in lines[0], lines
    assert holder(lab, "farm-b") is None


# -- pytest and nightly ----------------------------------------------------------------

def test_a_pytest_session_on_a_place(lab: farm_lab.Lab, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(farm_lab.REPO / "tests" / "hil"), "-q", "-p", "no:cacheprovider",
         "--board", "nano33", "--hil-limit", "8", "--min-accuracy", "0.5", "--rootdir", str(farm_lab.REPO)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=farm_lab._env({"LG_PLACE": "farm-sim", "LG_COORDINATOR": lab.address}))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "passed" in r.stdout and "failed" not in r.stdout
    assert holder(lab, "farm-sim") is None


def test_a_four_cell_nightly_spreads_over_both_places(lab: farm_lab.Lab, tmp_path: Path) -> None:
    from harness.data.synth import build_synthetic
    from harness.report.nightly import run_nightly

    cells = []
    for seed in range(4):
        data = build_synthetic(tmp_path / f"data{seed}", 3, seed=100 + seed, splits=(0, 0, 1.0), workers=1)
        cells.append(f'[[cell]]\nboard = "nano33"\nbackend = "serial"\ndataset = "{data}"\n')
    matrix = tmp_path / "farm.toml"
    matrix.write_text('[nightly]\nname = "farm"\nlimit = 3\nwarmups = 0\n\n' + "\n".join(cells))
    started = time.monotonic()
    result = run_nightly(matrix, tmp_path / "nightly", places=True, coordinator=lab.address,
                         write_reports=False)
    took = time.monotonic() - started
    assert [o.status for o in result.outcomes] == ["ok"] * 4, [o.reason for o in result.outcomes]
    assert {o.place for o in result.outcomes} == {"farm-sim", "farm-b"}
    summary = result.summary_path.read_text()
    assert "### Places" in summary and "farm-sim" in summary and "farm-b" in summary
    for o in result.outcomes:
        assert o.run_dir is not None and manifest(o.run_dir)["place"]["name"] == o.place
    assert holder(lab, "farm-sim") is None and holder(lab, "farm-b") is None
    assert took < 150


def test_a_failing_place_ends_only_its_own_cell(lab: farm_lab.Lab, tmp_path: Path) -> None:
    from harness.data.synth import build_synthetic
    from harness.report.nightly import run_nightly

    # a place whose exporter never existed: free, tagged, and broken
    lab.create_place("farm-ghost", ["ghost/dev/NetworkSerialPort"], {"board": "nano33"})
    cells = ['[[cell]]\nboard = "nano33"\nbackend = "sim"\n']
    for seed in range(3):
        data = build_synthetic(tmp_path / f"data{seed}", 2, seed=200 + seed, splits=(0, 0, 1.0), workers=1)
        cells.append(f'[[cell]]\nboard = "nano33"\nbackend = "serial"\ndataset = "{data}"\n')
    matrix = tmp_path / "farm.toml"
    matrix.write_text('[nightly]\nname = "farm"\nlimit = 2\nwarmups = 0\n\n' + "\n".join(cells))
    from harness.farm.client import connected

    try:
        result = run_nightly(matrix, tmp_path / "nightly", places=True, coordinator=lab.address,
                             write_reports=False)
    finally:
        with connected(lab.address) as c:
            c.delete_place("farm-ghost")
    seen = [(o.status, o.place, o.reason) for o in result.outcomes]
    assert [s for s, p, _ in seen if p != "farm-ghost"] == ["ok"] * 3, seen
    (ghost,) = [(s, r) for s, p, r in seen if p == "farm-ghost"]
    assert ghost[0] == "failed" and "farm-ghost" in ghost[1], seen


def test_ctrl_c_during_a_farm_nightly_frees_every_place(lab: farm_lab.Lab, tmp_path: Path) -> None:
    from harness.data.synth import build_synthetic

    cells = []
    for seed in range(2):
        data = build_synthetic(tmp_path / f"data{seed}", 60, seed=300 + seed, splits=(0, 0, 1.0), workers=1)
        cells.append(f'[[cell]]\nboard = "nano33"\nbackend = "serial"\ndataset = "{data}"\n')
    matrix = tmp_path / "farm.toml"
    matrix.write_text('[nightly]\nname = "farm"\nwarmups = 0\n\n' + "\n".join(cells))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
         "nightly", "--matrix", str(matrix), "--out", str(tmp_path / "nightly"), "--places",
         "--coordinator", lab.address, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=farm_lab._env())
    deadline = time.monotonic() + 60
    while not (holder(lab, "farm-sim") and holder(lab, "farm-b")):
        assert time.monotonic() < deadline and proc.poll() is None, "the nightly never held both places"
        time.sleep(0.2)
    _wait_rows(tmp_path / "nightly" / "runs", 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert holder(lab, "farm-sim") is None and holder(lab, "farm-b") is None
