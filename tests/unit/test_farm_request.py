"""A bench request that names a board-farm place: parsing and checks, no labgrid needed."""

from __future__ import annotations

import pytest

from harness.bench.api import run_bench
from harness.bench.request import BenchRequest
from harness.errors import ConfigError
from harness.farm.lease import PlaceQuery


def test_a_place_is_a_name_or_tags() -> None:
    assert PlaceQuery.parse("nano33-a") == PlaceQuery(name="nano33-a")
    q = PlaceQuery.parse("board=nano33, lab=b")
    assert q.name is None and q.tags == {"board": "nano33", "lab": "b"}
    assert str(q) == "board=nano33,lab=b"


@pytest.mark.parametrize("text", ["", "board=", "=nano33", "board=nano33,lab"])
def test_a_malformed_place_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="--place"):
        PlaceQuery.parse(text)


def test_a_place_means_the_serial_backend() -> None:
    r = BenchRequest(place="board=nano33").resolved()
    assert r.backend == "serial" and r.port is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"place": "a", "port": "/dev/ttyACM0"}, "give one"),
    ({"place": "a", "backend": "sim"}, "does not go with --backend sim"),
    ({"place": "a", "place_wait": -1.0}, "--place-wait"),
])
def test_place_conflicts_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BenchRequest(**kwargs).resolved()


def test_the_place_is_stored_for_resume() -> None:
    d = BenchRequest(place="board=nano33", coordinator="127.0.0.1:20408", place_wait=5.0).to_dict()
    back = BenchRequest.from_dict(d)
    assert (back.place, back.coordinator, back.place_wait) == ("board=nano33", "127.0.0.1:20408", 5.0)


def test_a_place_without_farm_support_is_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"\[farm\]"):
        run_bench(BenchRequest(place="board=nano33", limit=1, out_dir=tmp_path))
