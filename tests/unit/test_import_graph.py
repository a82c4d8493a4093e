"""The package's import graph has no circles.

Every ``import harness...`` and ``from harness... import ...`` counts, wherever it is
written (module level, inside a function, under ``TYPE_CHECKING``): a lazy import hides a
circle from Python but not from a reader, and circles are how layers start to leak into
each other. The walk reads the source with :mod:`ast`, so it needs no optional package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import harness

ROOT = Path(harness.__file__).resolve().parent


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The harness modules ``path`` imports (a name imported from a package counts as its
    submodule when one of that name exists)."""
    name = module_name(path)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("harness"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("harness"):
                continue
            subs = {f"{target}.{a.name}" for a in node.names}
            found = subs & modules.keys()
            out.update(found)
            if len(found) < len(subs):
                out.add(target)
    # a package importing its own submodules (re-exports) is not a circle
    return {m for m in out if m in modules and m != name and not (is_pkg and m.startswith(name + "."))}


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    g: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = imports_of(path, modules)
        # importing a package's submodule runs the package's __init__ first, but that is an
        # edge to the package, not from the submodule back to it
        g[name] = {d for d in deps if not name.startswith(d + ".")}
    return g


def find_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return cycles


def test_the_walk_sees_a_circle_when_there_is_one() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(g) == [["a", "b", "c"]]


def test_the_walk_reads_real_imports() -> None:
    g = graph()
    assert "harness.link.framing" in g["harness.link.messages"]
    assert "harness.devices.base" in g["harness.devices.sim.device"]


def test_the_harness_package_has_no_import_circles() -> None:
    cycles = find_cycles(graph())
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


ENTRY_POINTS = {"cli", "boards_cli", "serve", "pytest_plugin"}
ARCHITECTURE = ROOT.parent / "docs" / "architecture.md"


def area(module: str) -> str:
    """``harness.bench.runner`` -> ``bench``; ``harness.errors`` -> ``errors``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_entry_point(module: str) -> bool:
    return area(module) in ENTRY_POINTS or module.endswith(".cli")


def allowed_imports() -> dict[str, set[str]]:
    """The "may import" table of docs/architecture.md."""
    import re

    rows: dict[str, set[str]] = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `(\w+)` \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = set(re.findall(r"`(\w+)`", m.group(2)))
    return rows


def test_imports_between_packages_follow_the_architecture_table() -> None:
    allowed = allowed_imports()
    assert {"link", "devices", "bench", "report"} <= allowed.keys(), "the table was not found"
    wrong = []
    for module, deps in graph().items():
        src = area(module)
        if not src or is_entry_point(module):
            continue
        if src not in allowed:
            wrong.append(f"{module}: package {src!r} is not in docs/architecture.md's table")
            continue
        for dep in deps:
            dst = area(dep)
            if dst and dst != src and dst not in allowed[src]:
                wrong.append(f"{module} imports {dep}: {src} may not import {dst}")
    assert not wrong, "\n".join(sorted(wrong))


def test_devices_use_deploy_only_through_its_api() -> None:
    reach = [
        f"{m} imports {d}" for m, deps in graph().items() if area(m) == "devices"
        for d in deps if area(d) == "deploy" and d != "harness.deploy.api"
    ]
    assert not reach, "\n".join(reach)


def test_the_bench_talks_to_the_protocol_interface_not_to_one_protocol() -> None:
    one_protocol = {"harness.link.messages", "harness.link.session", "harness.link.framing"}
    reach = [
        f"{m} imports {d}" for m, deps in graph().items()
        if area(m) == "bench" and not is_entry_point(m) for d in deps if d in one_protocol
    ]
    assert not reach, "\n".join(reach)
