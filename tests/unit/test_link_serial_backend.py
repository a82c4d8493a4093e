"""The serial backend's port finding and its one-line errors for a wrong or silent port."""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Iterator

import pytest

from harness.boards import load_board
from harness.devices import create_device
from harness.devices.serial import device as sd
from harness.errors import ConfigError, LinkError
from harness.link.transport import FoundPort


@pytest.fixture
def no_real_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sd, "present_ports", lambda: ["/dev/ttyS0", "/dev/ttyUSB3"])


def test_no_board_attached_lists_the_ports_present(
    monkeypatch: pytest.MonkeyPatch, no_real_ports: None
) -> None:
    monkeypatch.setattr(sd, "find_ports", lambda ids: [])
    dev = create_device("serial", load_board("nano33"))
    with pytest.raises(LinkError) as info:
        dev.open()
    text = str(info.value)
    assert "2341:805a" in text and "/dev/ttyS0, /dev/ttyUSB3" in text and "--port" in text
    assert "\n" not in text


def test_several_boards_ask_for_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [FoundPort("/dev/ttyACM0", 0x2341, 0x805A, "Nano"), FoundPort("/dev/ttyACM1", 0x2341, 0x805A, "")]
    monkeypatch.setattr(sd, "find_ports", lambda ids: found)
    with pytest.raises(ConfigError, match="--port") as info:
        create_device("serial", load_board("nano33")).open()
    assert "/dev/ttyACM0 (Nano), /dev/ttyACM1" in str(info.value)


def test_one_board_found_by_usb_id_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sd, "find_ports", lambda ids: [FoundPort("/dev/ttyACM7", 0x2341, 0x805A, "")])
    assert sd.locate_port(load_board("nano33")) == "/dev/ttyACM7"


def test_a_port_that_does_not_exist(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(LinkError, match="cannot open port"):
        create_device("serial", load_board("nano33"), port=f"{tmp_path}/ttyNOPE").open()


def test_baud_defaults_to_the_board_profile() -> None:
    board = load_board("esp32cam")
    dev = create_device("serial", board, port="loop://")
    assert dev._start() == ("loop://", board.baud)  # type: ignore[attr-defined]
    dev = create_device("serial", board, port="loop://", baud=921600)
    assert dev._start() == ("loop://", 921600)  # type: ignore[attr-defined]


@pytest.fixture
def chatty_pty() -> Iterator[str]:
    """A pty whose other end prints text, like a board running some other firmware."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def talk() -> None:
        while not stop.is_set():
            try:
                os.write(master, b"Hello from another sketch!\r\n")
            except OSError:
                return
            time.sleep(0.02)

    thread = threading.Thread(target=talk, daemon=True)
    thread.start()
    yield os.ttyname(slave)
    stop.set()
    thread.join(timeout=2)
    os.close(slave)
    os.close(master)


def test_a_port_where_something_else_talks(chatty_pty: str) -> None:
    dev = create_device("serial", load_board("nano33"), port=chatty_pty, timeout=0.2, retries=1)
    start = time.monotonic()
    with pytest.raises(LinkError, match="not protocol frames") as info:
        dev.open()
    assert time.monotonic() - start < 2.0 and "\n" not in str(info.value)


def test_a_silent_port() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        dev = create_device("serial", load_board("nano33"), port=os.ttyname(slave), timeout=0.2, retries=1)
        with pytest.raises(LinkError, match="nothing was received"):
            dev.open()
    finally:
        os.close(slave)
        os.close(master)
