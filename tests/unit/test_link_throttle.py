"""The throttled link: bytes arrive intact, in order, and no faster than the line carries them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from harness.devices.sim.link import ThrottledLink, grain_bytes
from harness.link.device_end import FdLink

BAUD = 200_000
Pipes = tuple[int, int, int, int]


@pytest.fixture
def links() -> Iterator[list[ThrottledLink]]:
    made: list[ThrottledLink] = []
    yield made
    for link in made:
        link.close()


@pytest.fixture
def pipes(links: list[ThrottledLink]) -> Iterator[Pipes]:
    """(host writes, device reads) and (device writes, host reads) pipe ends."""
    to_dev_r, to_dev_w = os.pipe()
    to_host_r, to_host_w = os.pipe()
    yield to_dev_w, to_dev_r, to_host_w, to_host_r
    for link in links:  # stop the readers before their descriptors close and get reused
        link.close()
    for fd in (to_dev_r, to_dev_w, to_host_r, to_host_w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_receive_side_is_paced_and_intact(pipes: Pipes, links: list[ThrottledLink]) -> None:
    host_w, dev_r, dev_w, _host_r = pipes
    link = ThrottledLink(FdLink(dev_r, dev_w, block=grain_bytes(BAUD)), BAUD)
    links.append(link)
    data = os.urandom(3000)
    start = time.monotonic()
    os.write(host_w, data)
    got = b""
    while len(got) < len(data) and time.monotonic() - start < 5:
        got += link.read(0.5)
    elapsed = time.monotonic() - start
    assert got == data
    assert elapsed >= 0.95 * len(data) * 10 / BAUD


def test_send_side_is_paced_and_intact(pipes: Pipes, links: list[ThrottledLink]) -> None:
    _host_w, dev_r, dev_w, host_r = pipes
    link = ThrottledLink(FdLink(dev_r, dev_w), BAUD)
    links.append(link)
    data = os.urandom(3000)
    start = time.monotonic()
    link.write(data)
    elapsed = time.monotonic() - start
    assert os.read(host_r, 10_000) == data
    assert elapsed >= 0.95 * len(data) * 10 / BAUD


def test_closed_peer_ends_the_link(pipes: Pipes, links: list[ThrottledLink]) -> None:
    host_w, dev_r, dev_w, _host_r = pipes
    link = ThrottledLink(FdLink(dev_r, dev_w), BAUD)
    links.append(link)
    os.write(host_w, b"last words")
    os.close(host_w)
    got = b""
    with pytest.raises(EOFError):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got += link.read(0.5)
    assert got == b"last words"
