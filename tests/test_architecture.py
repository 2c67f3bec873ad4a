"""The house rules of docs/ARCHITECTURE.md, checked on the source: wings, no import cycles, module sizes.

Every ``import`` is counted, also those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geo", "models")

#: Modules loose in geo/: the basics every wing shares.
BASICS = {"geo", "geo.aoi", "geo.bands", "geo.config", "geo.errors", "geo.fsutil", "geo.grid",
          "geo.periods", "geo.stack"}

#: wing -> the wings (and basics) it may import. ``models`` is the model package; ``inference`` its
#: inference modules only.
ALLOWED = {
    "basics": {"basics"},
    "geo.sources": {"basics", "geo.sources"},
    "geo.stages": {"basics", "geo.stages", "inference"},
    "geo.results": {"basics", "geo.stages", "geo.results"},
    "geo.run": {"basics", "geo.sources", "geo.stages", "geo.results", "geo.run", "inference"},
    "geo.sim": {"basics", "geo.sim", "geo.results"},
}
INFERENCE = {"models.infer", "models.unet"}
#: The run path: nothing reachable from these may be the simulator.
RUN_PATH = ("geo.run.pipeline", "geo.run.recompute", "geo.cli.run", "geo.cli.change", "geo.cli.detect")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    mods = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                # the longest prefix that is one of our modules
                parts = t.split(".")
                while parts and ".".join(parts) not in mods:
                    parts.pop()
                if parts and ".".join(parts) != name:
                    deps.add(".".join(parts))
        graph[name] = deps
    return graph


def _wing(mod: str) -> str:
    if mod in BASICS:
        return "basics"
    if mod in INFERENCE:
        return "inference"
    if mod.startswith("models"):
        return "models"
    return ".".join(mod.split(".")[:2])


def test_geo_top_level_holds_at_most_12_modules():
    loose = sorted(p.name for p in (ROOT / "geo").glob("*.py"))
    assert len(loose) <= 12, loose


def test_no_module_over_400_lines():
    big = {str(p.relative_to(ROOT)): n for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not big, big


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return path[path.index(d):] + [d] if d in path else [m, d]
            if d not in state and (found := visit(d, path + [d])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [m])):
            return found
    return None


def breaches(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go against :data:`ALLOWED`."""
    return [f"{m} -> {d}" for m, deps in sorted(graph.items()) if _wing(m) in ALLOWED
            for d in sorted(deps) if _wing(d) not in ALLOWED[_wing(m)]]


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph.get(m, ())
    return seen


def test_no_import_cycles():
    assert find_cycle(_graph()) is None


def test_wings_import_only_what_they_may():
    assert breaches(_graph()) == []


@pytest.mark.parametrize("start", RUN_PATH)
def test_run_path_never_reaches_the_simulator(start):
    assert not sorted(m for m in reachable(_graph(), start) if m.startswith("geo.sim"))


def test_the_checks_catch_a_planted_cycle_and_upward_import():
    g = {"geo.errors": {"geo.stages.detect"}, "geo.stages.detect": {"geo.errors"}, "geo.run.tasks": {"geo.sim.scene"}}
    assert find_cycle(g) in (["geo.errors", "geo.stages.detect", "geo.errors"],
                             ["geo.stages.detect", "geo.errors", "geo.stages.detect"])
    assert breaches(g) == ["geo.errors -> geo.stages.detect", "geo.run.tasks -> geo.sim.scene"]
    assert "geo.sim.scene" in reachable(g, "geo.run.tasks")
