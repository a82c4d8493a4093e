"""Opening ports by URL: every failure a user can cause is one LinkError line."""

from __future__ import annotations

import socket

import pytest

from harness.errors import LinkError
from harness.link.transport import open_port


def _closed_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "/dev/ttyNOSUCHPORT0",
        "socket://127.0.0.1:{port}",
        "rfc2217://127.0.0.1:{port}",
        "nosuchscheme://whatever",
    ],
)
def test_unreachable_ports_are_one_line(url: str) -> None:
    target = url.format(port=_closed_tcp_port())
    with pytest.raises(LinkError) as err:
        open_port(target)
    message = str(err.value)
    assert message.startswith(f"cannot open port {target}: ") and "\n" not in message


def test_loop_url_opens_and_echoes() -> None:
    port = open_port("loop://")
    try:
        port.write(b"\x00abc\x00")
        assert port.read(5) == b"\x00abc\x00"
    finally:
        port.close()
