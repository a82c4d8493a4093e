"""The nightly matrix: which models run on which boards and backends.

A matrix is a TOML file (see ``matrices/sim.toml``): a ``[nightly]`` table with shared
settings, a ``[matrix]`` table whose ``models``, ``boards`` and ``backends`` lists are
crossed (minus ``[[matrix.exclude]]`` entries), and optional explicit ``[[cell]]``
tables. Relative paths resolve against the matrix file, so a matrix means the same
thing from any working directory.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.report.regress import Policy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MODEL = "default"  # the bench's default model (run_bench(model=None)), as a matrix names it
KNOWN_NIGHTLY_KEYS = {"out", "limit", "dataset", "threshold", "warmups", "repeats", "window",
                      "latency_k", "latency_rel_floor", "min_latency_history",
                      "min_accuracy_history", "accuracy_confidence", "name"}
KNOWN_TABLES = {"nightly", "matrix", "cell"}
KNOWN_MATRIX_KEYS = {"models", "boards", "backends", "exclude"}
KNOWN_CELL_KEYS = {"model", "board", "backend", "dataset"}
KNOWN_EXCLUDE_KEYS = {"model", "board", "backend"}


@dataclass(frozen=True)
class Cell:
    model: str | None
    board: str
    backend: str
    dataset: str | None = None
    #: the model's name as run.json records it ("mlperf-vww-96", not "default"): set by
    #: :func:`load_matrix` and corrected from the run itself once the cell ran
    model_name: str = ""
    #: where the matrix file lists it ("[matrix]" or "[[cell]] #N"), for error messages
    source: str = field(default="[matrix]", compare=False)

    @property
    def label(self) -> str:
        """The model as every nightly output names it: the resolved name, never "default"."""
        return self.model_name or self.model or DEFAULT_MODEL

    @property
    def name(self) -> str:
        return f"{self.label} @ {self.board}/{self.backend}"


@dataclass
class Matrix:
    path: Path
    name: str
    cells: list[Cell]
    out: Path | None
    limit: int | None
    threshold: float
    warmups: int | None  # None: the bench's default for the backend (0 on sim, 1 elsewhere)
    repeats: int
    policy: Policy = field(default_factory=Policy)


def _model(value: Any, base: Path) -> str | None:
    text = str(value)
    if text == DEFAULT_MODEL:
        return None
    if text.endswith(".tflite") and not Path(text).is_absolute():
        return str((base / text).resolve())
    return text


def resolved_model_name(model: str | None) -> str:
    """The name a run of ``model`` records (run.json's ``model.name``), found without running it.

    A matrix says "default" for the bench's default model, which is the MLPerf Tiny
    reference where it is present and the shipped model otherwise; a page that said
    "default" would hide which one ran. A file is named by its zoo entry (matched by
    hash) or its stem, as the bench names it. Where nothing resolves (a missing file),
    the text as given.
    """
    from harness.errors import ModelError
    from harness.models import zoo

    try:
        if model is None:
            path = zoo.default_model_file(warn=False)
        elif zoo.looks_like_path(model):
            path = Path(model)
            if not path.is_file():
                return model
        else:
            return model
        return zoo.name_of_file(path) or path.stem
    except (ModelError, OSError):
        return model or DEFAULT_MODEL


def _cell(model: Any, board: str, backend: str, dataset: str | None, base: Path,
          source: str = "[matrix]") -> Cell:
    spec = _model(model, base)
    return Cell(spec, board, backend, dataset, resolved_model_name(spec), source=source)


def _path(value: Any, base: Path) -> str | None:
    if value in (None, ""):
        return None
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _str_list(table: dict[str, Any], key: str, where: str) -> list[str]:
    v = table.get(key)
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: '{key}' must be a non-empty list of strings")
    return v


def _no_unknown_keys(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(sorted(unknown))} "
                          f"(expected: {', '.join(sorted(known))})")


def load_matrix(path: Path) -> Matrix:
    """Parse and check a matrix file; every mistake is one ConfigError line."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"matrix file {path} not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"matrix file {path} is not valid TOML: {exc}") from exc
    base = path.resolve().parent
    _no_unknown_keys(data, KNOWN_TABLES, f"{path}")
    nightly = data.get("nightly", {})
    if not isinstance(nightly, dict):
        raise ConfigError(f"{path}: [nightly] must be a table")
    unknown = set(nightly) - KNOWN_NIGHTLY_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown [nightly] keys: {', '.join(sorted(unknown))}")
    dataset = _path(nightly.get("dataset"), base)
    cells: list[Cell] = []
    m = data.get("matrix")
    if m is not None:
        if not isinstance(m, dict):
            raise ConfigError(f"{path}: [matrix] must be a table")
        _no_unknown_keys(m, KNOWN_MATRIX_KEYS, f"{path} [matrix]")
        models = _str_list(m, "models", f"{path} [matrix]")
        boards = _str_list(m, "boards", f"{path} [matrix]")
        backends = _str_list(m, "backends", f"{path} [matrix]")
        excludes = m.get("exclude", [])
        if not isinstance(excludes, list) or not all(isinstance(e, dict) for e in excludes):
            raise ConfigError(f"{path}: [[matrix.exclude]] entries must be tables")
        for i, e in enumerate(excludes):
            _no_unknown_keys(e, KNOWN_EXCLUDE_KEYS, f"{path} [[matrix.exclude]] #{i + 1}")
        for model, board, backend in product(models, boards, backends):
            here = {"model": model, "board": board, "backend": backend}
            if any(all(here.get(k) == v for k, v in e.items()) for e in excludes):
                continue
            cells.append(_cell(model, board, backend, dataset, base))
    for i, c in enumerate(data.get("cell", []) or []):
        if not isinstance(c, dict) or not {"board", "backend"} <= set(c):
            raise ConfigError(f"{path}: [[cell]] #{i + 1} needs at least board and backend")
        _no_unknown_keys(c, KNOWN_CELL_KEYS, f"{path} [[cell]] #{i + 1}")
        cells.append(_cell(c.get("model", DEFAULT_MODEL), str(c["board"]), str(c["backend"]),
                           _path(c.get("dataset"), base) or dataset, base, source=f"[[cell]] #{i + 1}"))
    if not cells:
        raise ConfigError(f"{path}: no cells (add a [matrix] table or [[cell]] entries)")
    seen: set[Cell] = set()
    dupes = [c.name for c in cells if c in seen or seen.add(c)]  # type: ignore[func-returns-value]
    if dupes:
        raise ConfigError(f"{path}: cells listed twice: {', '.join(dupes)}")
    try:
        policy = Policy(
            window=int(nightly.get("window", Policy.window)),
            latency_k=float(nightly.get("latency_k", Policy.latency_k)),
            latency_rel_floor=float(nightly.get("latency_rel_floor", Policy.latency_rel_floor)),
            min_latency_history=int(nightly.get("min_latency_history",
                                                Policy.min_latency_history)),
            min_accuracy_history=int(nightly.get("min_accuracy_history",
                                                 Policy.min_accuracy_history)),
            accuracy_confidence=float(nightly.get("accuracy_confidence",
                                                  Policy.accuracy_confidence)),
        )
        if not 0.5 <= policy.accuracy_confidence < 1:
            raise ValueError("accuracy_confidence must be in [0.5, 1)")
        limit = nightly.get("limit")
        return Matrix(
            path=path, name=str(nightly.get("name", path.stem)), cells=cells,
            out=Path(_path(nightly["out"], base) or "") if nightly.get("out") else None,
            limit=int(limit) if limit is not None else None,
            threshold=float(nightly.get("threshold", 0.5)),
            warmups=int(nightly["warmups"]) if "warmups" in nightly else None,
            repeats=int(nightly.get("repeats", 1)),
            policy=policy)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: bad value in [nightly]: {exc}") from exc


def check_cells(m: Matrix) -> None:
    """Refuse a board, backend or model name that no cell could run, before any cell runs.

    A typo in the matrix is the matrix's error (one line naming the file, the key and what
    was expected, exit 2), not a night of failed cells. A zoo model that is known but not
    downloaded is not a typo: that cell fails on its own, with the download hint.
    """
    from harness.bench.request import known_backends
    from harness.boards import load_board
    from harness.errors import HarnessError
    from harness.models.zoo import get_entry

    backends = known_backends()
    for cell in m.cells:
        plural = cell.source == "[matrix]"
        where = f"{m.path}: {cell.source}"
        try:
            load_board(cell.board)
        except HarnessError as exc:
            raise ConfigError(f"{where} {'boards' if plural else 'board'}: {exc}") from None
        if cell.backend not in backends:
            raise ConfigError(f"{where} {'backends' if plural else 'backend'}: unknown backend "
                              f"{cell.backend!r} (known: {', '.join(backends)})")
        model = cell.model
        if model is None:
            continue
        key = "models" if plural else "model"
        if "/" in model or model.endswith(".tflite"):
            if not Path(model).is_file():
                raise ConfigError(f"{where} {key}: model file {model} does not exist")
            continue
        try:
            get_entry(model)
        except HarnessError as exc:
            raise ConfigError(f"{where} {key}: {exc} (or \"{DEFAULT_MODEL}\", or a .tflite path)") from None
