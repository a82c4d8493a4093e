"""The console: rich bars and a red error line on a terminal, plain text everywhere else.

Rendering is checked on rich's own recording console forced to be a terminal, and the
end-to-end rule (no bar with ``--quiet``, a bar without it) on a real pseudo-terminal
around a real ``hil bench`` child on the fake backend.
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench_fakes import UNIT_DIR, make_image_folder, tiny_model
from rich.console import Console

from harness import console
from harness.errors import LinkError

ESC = "\x1b"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTty(io.StringIO):
    """A text stream that claims to be a terminal (for the CI rule, which must win)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CI", raising=False)
    console.configure()
    yield
    console.configure()


def terminal() -> Console:
    return Console(record=True, force_terminal=True, width=140, color_system="truecolor")


def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:  # noqa: BLE001 - we want the traceback attached
        return caught


def test_plain_when_the_stream_is_not_a_terminal() -> None:
    assert console.is_plain(io.StringIO())
    assert not console.is_plain(FakeTty())
    out = io.StringIO()
    con = console.make_console(out)
    assert not con.is_terminal
    console.print_error("hil bench", LinkError("no port /dev/ttyX"), console=con)
    assert out.getvalue() == "hil bench: error: no port /dev/ttyX\n"


def test_ci_makes_even_a_terminal_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    tty = FakeTty()
    assert console.is_plain(tty)
    con = console.make_console(tty)
    console.print_table(console.table(["board", "acc"], [["nano33", "93.1%"]]), console=con)
    console.print_error("hil bench", LinkError("[bold]no port[/]"), console=con)
    text = tty.getvalue()
    assert ESC not in text
    assert "nano33" in text and "93.1%" in text
    assert text.splitlines()[-1] == "hil bench: error: [bold]no port[/]"  # markup not interpreted


def test_no_bar_is_drawn_where_output_is_plain(capsys: pytest.CaptureFixture[str]) -> None:
    with console.progress("bench", 3, unit="img") as bar:  # pytest's capture is not a tty
        assert not bar.drawing
        for _ in range(3):
            bar.advance(1, acc="100.0%")
    assert bar.completed == 3
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_counts_and_shows_the_rates_that_matter() -> None:
    con = terminal()
    bar = console.progress("nano33/sim", 10, unit="img", completed=4, console=con)
    assert bar.drawing
    for i in range(6):
        bar.advance(1, acc=console.percent((i + 1) / 6), errors=0, mismatches=1, resends=2)
    bar.close()
    bar.close()  # idempotent: the bench closes on every path
    text = con.export_text()
    assert "nano33/sim" in text
    assert "10/10" in text
    assert "img/s" in text
    assert "acc 100.0%  errors 0  mismatches 1  resends 2" in text


def test_quiet_hides_the_bar_even_on_a_terminal() -> None:
    console.configure(quiet=True)
    con = terminal()
    with console.progress("bench", 2, console=con) as bar:
        bar.advance(2)
    assert not bar.drawing and bar.completed == 2
    assert con.export_text() == ""


def test_an_inner_bar_shares_the_outer_display() -> None:
    """A sweep's training bars open inside the sweep's bar; rich allows one live display."""
    con = terminal()
    with console.progress("sweep", 2, unit="point", console=con) as outer:
        for _ in range(2):
            with console.progress("train", 5, unit="batch") as inner:
                assert inner.drawing
                inner.advance(5)
            outer.advance(1, failed=0)
    assert "2/2" in con.export_text()
    with console.progress("again", 1, console=con) as bar:  # the display was released
        bar.advance(1)


def test_error_is_one_red_line_on_a_terminal() -> None:
    con = terminal()
    exc = _raised(LinkError("no answer from /dev/ttyACM0"))
    console.print_error("hil bench", exc, verbose=1, console=con)
    styled = con.export_text(styles=True, clear=False)
    plain = con.export_text()
    assert plain == "hil bench: error: no answer from /dev/ttyACM0\n"
    assert "Traceback" not in plain
    assert ESC + "[" in styled and "31" in ANSI.findall(styled)[0]  # red


def test_traceback_only_with_vv() -> None:
    exc = _raised(LinkError("no answer"))
    out = io.StringIO()
    console.print_error("hil bench", exc, verbose=2, console=console.make_console(out))
    text = out.getvalue()
    assert text.startswith("Traceback (most recent call last):")
    assert "_raised" in text
    assert text.splitlines()[-1] == "hil bench: error: no answer"
    con = terminal()
    console.print_error("hil bench", exc, verbose=2, console=con)
    shown = con.export_text()
    assert "Traceback" in shown and shown.rstrip().endswith("hil bench: error: no answer")


def _bench_on_a_pty(tmp_path: Path, *extra: str) -> tuple[int, str]:
    """``hil bench`` on the fake backend with stdout and stderr on a real pseudo-terminal."""
    data = make_image_folder(tmp_path / "data", 6)
    model = tiny_model(tmp_path)
    return _hil_on_a_pty(
        tmp_path, "bench", "--backend", "fake", "--model", str(model), "--data", str(data),
        "--out", str(tmp_path / "runs"), *extra, env={"BENCH_FAKE_DELAY_S": "0.05"},
    )  # fmt: skip


def _hil_on_a_pty(tmp_path: Path, *argv: str, env: dict[str, str]) -> tuple[int, str]:
    """``hil ARGV`` (with the fake backend registered) on a real pseudo-terminal."""
    code = (
        f"import sys; sys.path.insert(0, {str(UNIT_DIR)!r}); import bench_fakes\n"
        "from harness.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    master, slave = pty.openpty()
    child_env = {k: v for k, v in os.environ.items() if k != "CI"}
    child_env.update(COLUMNS="160", TERM="xterm-256color", **env)
    child = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=child_env,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the pty
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif child.poll() is not None:
                break
        rc = child.wait(timeout=30)
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()
    return rc, b"".join(chunks).decode("utf-8", "replace")


def test_hil_bench_quiet_on_a_terminal_prints_no_bar(tmp_path: Path) -> None:
    rc, text = _bench_on_a_pty(tmp_path, "--quiet")
    assert rc == 0, text
    assert "img/s" not in text and ESC not in text and "╭" not in text
    assert "run folder: " in text


def test_hil_bench_on_a_terminal_draws_the_bar(tmp_path: Path) -> None:
    rc, text = _bench_on_a_pty(tmp_path)
    assert rc == 0, text
    assert "img/s" in text and "6/6" in ANSI.sub("", text)
    assert "acc " in text and "mismatches" in text
    assert "╭" in text and "│ images " in ANSI.sub("", text)  # the summary as a table


def test_quiet_is_plain_everywhere() -> None:
    console.configure(quiet=True)
    tty = FakeTty()
    assert console.is_plain(tty)
    console.print_summary("images   4 measured\n", title="run", console=console.make_console(tty))
    console.print_error("hil bench", LinkError("no port"), console=console.make_console(tty))
    assert tty.getvalue() == "images   4 measured\nhil bench: error: no port\n"


SUMMARY = (
    "run r1: complete\n"
    "accuracy 85.7 % (95 % CI 65.4 % - 95.0 %) at threshold 0.5\n"
    "latency  (estimated) p50 287.17 ms - estimated from the nano33 cost model (source: MLPerf Tiny)\n"
)


def test_summary_is_a_table_on_a_terminal_and_the_file_elsewhere() -> None:
    con = terminal()
    console.print_summary(SUMMARY, title="r1", console=con)
    text = con.export_text()
    cells = [ln.split("│") for ln in text.splitlines() if ln.count("│") == 3]
    rows = {c[1].strip(): c[2].strip() for c in cells}
    assert rows["accuracy"] == "85.7 % (95 % CI 65.4 % - 95.0 %) at threshold 0.5"
    assert rows["latency"].startswith("(estimated) p50 287.17 ms") and "nano33 cost model" in rows["latency"]
    out = io.StringIO()
    console.print_summary(SUMMARY, title="r1", console=console.make_console(out))
    assert out.getvalue() == SUMMARY  # byte for byte, as summary.txt


def test_a_narrow_terminal_folds_a_summary_but_keeps_every_word() -> None:
    con = Console(record=True, force_terminal=True, width=50)
    console.print_summary(SUMMARY, console=con)
    words = " ".join(ln.split("│")[2].strip() for ln in con.export_text().splitlines() if ln.count("│") == 3)
    assert "(source: MLPerf Tiny)" in words and "287.17 ms" in words


def test_rows_are_a_rich_table_on_a_terminal_and_aligned_text_otherwise() -> None:
    cols = ["#", "model", "p50 ms"]
    rows = [[1, "mlperf-vww-96", "287.17"], [2, "vww-default", None]]
    con = terminal()
    console.print_rows(cols, rows, title="Runs", console=con)
    shown = con.export_text()
    assert "┃ model" in shown and "│ mlperf-vww-96 │ 287.17 │" in shown
    out = io.StringIO()
    console.print_rows(cols, rows, title="Runs", console=console.make_console(out))
    assert out.getvalue() == (
        "Runs\n"
        "#  model          p50 ms\n"
        "1  mlperf-vww-96  287.17\n"
        "2  vww-default\n"
    )


def test_status_line_on_a_terminal_ends_with_its_outcome() -> None:
    con = terminal()
    with console.status("building qemu image for vww-default (cached: no)", console=con) as st:
        assert st.drawing
        st.update("linking")
    assert st.ok is True
    # the recording holds every frame; the last one is the finished line
    last = ANSI.sub("", con.export_text()).split("(cached: no)")[-1]
    assert last.startswith(": done in ") and " s " in last
    assert "/" not in last  # no item count for work without a count
    con = terminal()
    with pytest.raises(LinkError), console.status("building qemu image", console=con) as st:
        st.update("compiling")
        raise LinkError("cmake failed")
    assert st.ok is False
    assert "building qemu image: failed at compiling in " in con.export_text()


def test_status_is_silent_where_output_is_plain(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="harness.console")
    with console.status("building nano33ble firmware") as st:  # pytest's capture is not a tty
        assert not st.drawing
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert any("building nano33ble firmware: done in" in r.getMessage() for r in caplog.records)


def test_a_status_inside_a_bar_shares_its_display() -> None:
    """An emulator build started inside a nightly's bar becomes a second line of that display."""
    con = terminal()
    with console.progress("nightly", 2, unit="cell", console=con) as bar:
        for _ in range(2):
            with console.status("building qemu image") as st:
                assert st.drawing
            bar.advance(1)
    assert "2/2" in con.export_text()
    with console.status("again", console=con) as st:  # the display was released
        assert st.drawing


def test_hil_build_shows_a_status_line_on_a_terminal_only(tmp_path: Path) -> None:
    """A real ``hil build --no-compile`` (TFLM measures the arena) into a temporary firmware dir."""
    from deploy_tiny_model import write_tiny_model

    model = write_tiny_model(tmp_path / "tiny.tflite")
    fw = {"HIL_FIRMWARE_DIR": str(tmp_path / "fw")}
    argv = ("build", "--board", "nano33", "--model", str(model), "--no-compile")
    rc, text = _hil_on_a_pty(tmp_path, *argv, env=fw)
    assert rc == 0, text
    plain = ANSI.sub("", text)
    assert "generating firmware sources for tiny.tflite on nano33: done in " in plain
    assert "firmware not compiled (--no-compile)" in plain
    rc, text = _hil_on_a_pty(tmp_path, *argv, "--quiet", env=fw)
    assert rc == 0 and "generating" not in text and ESC not in text
    piped = subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv], capture_output=True, text=True, timeout=120,
        env={**os.environ, **fw},
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and "generating" not in piped.stdout and ESC not in piped.stdout


# `hil compare`'s side-by-side rows as a real comparison printed them (the sim's reference
# model run next to two synthetic runs); on a 120-column terminal rich folded "333,288"
COMPARE_COLUMNS = ["#", "run", "model", "board/backend", "n", "accuracy (95 % CI)", "FPR", "FNR",
                   "p50 ms", "p90 ms", "p99 ms", "latency", "arena used B", "model B"]
COMPARE_ROWS = [
    ["1", "20261103T000000Z-esp32cam-sim-dcf61a", "vww_96_025", "esp32cam/sim", "76",
     "0.882 [0.790, 0.936]", "0.136", "0.094", "179.91", "184.51", "187.60", "estimated", "98,304",
     "302,000"],
    ["2", "20261207T154254Z-nano33-sim-43eaed", "mlperf-vww-96", "nano33/sim", "21",
     "0.857 [0.654, 0.950]", "0.118", "0.250", "451.17", "451.17", "451.17", "estimated", "103,680",
     "333,288"],
]


@pytest.mark.parametrize("width", [120, 140])
def test_a_wide_table_on_a_120_column_terminal_splits_no_number(width: int) -> None:
    con = Console(record=True, force_terminal=True, width=width, color_system=None,
                  file=io.StringIO())
    console.print_rows(COMPARE_COLUMNS, COMPARE_ROWS, title="Runs side by side", console=con)
    shown = con.export_text()
    lines = shown.splitlines()
    assert all(len(ln) <= width for ln in lines)
    words = {w for ln in lines for w in ln.replace("│", " ").split()}
    for row in COMPARE_ROWS:
        for value in row[4:]:  # every figure and word after the (foldable) run id
            for token in value.split():
                assert token in words, f"{token!r} is split in:\n{shown}"
    assert "vww_96_025" in words and "board/backend" in words


PIPED_WORK = """
import time
from harness import console
console.configure(quiet={quiet})
with console.status("compiling TFLM for qemu") as st:
    time.sleep(1.0)
    st.update("linking")
    time.sleep(0.6)
with console.progress("train scratch", 4, unit="batch") as bar:
    bar.advance(2, loss="0.693")
    with console.status("saving the model"):
        time.sleep(0.8)
with console.status("a step shorter than the interval"):
    pass
"""


def _piped(quiet: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PIPED_WORK.format(quiet=quiet)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HIL_PROGRESS_EVERY": "0.25"},
                          check=True)  # fmt: skip


def test_long_work_in_a_pipe_writes_a_line_every_few_seconds() -> None:
    """Minutes of a firmware build or a training epoch are not minutes of nothing in a pipe."""
    proc = _piped(quiet=False)
    lines = proc.stderr.splitlines()
    assert proc.stdout == "" and ESC not in proc.stderr
    build = [ln for ln in lines if ln.startswith("hil: compiling TFLM for qemu")]
    assert len(build) >= 4, proc.stderr  # one every 0.25 s over 1.6 s
    assert "(still running, " in build[0] and any(": linking... (still running" in ln for ln in build)
    nested = [ln for ln in lines if "saving the model" in ln]
    assert nested and all(ln.startswith("hil: train scratch: 2/4 batch") and " | saving the model..."
                          in ln for ln in nested), proc.stderr  # one line names both, inner last
    assert not any("shorter than the interval" in ln for ln in lines)
    assert all(ln.startswith("hil: ") for ln in lines), proc.stderr


def test_quiet_work_in_a_pipe_writes_nothing() -> None:
    assert _piped(quiet=True).stderr == ""
