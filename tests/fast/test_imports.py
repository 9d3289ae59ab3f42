"""The house's import rules, read from the source (no module is imported):

- no import cycle between ecredit's modules, counting the imports inside functions too (a cycle
  hidden behind a function-local import is still a cycle);
- pyspark is imported, directly or through ecredit's own modules, only by the Spark stages;
  the driver-side rooms (core, gate, warehouse, outputs, ops, airflow) stay free of the JVM.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ecredit"

# The modules that build or run Spark jobs (the Spark stages of docs/architecture.md).
SPARK_STAGES = {
    "ecredit.spark",
    "ecredit.ingest.columns",
    "ecredit.ingest.engine",
    "ecredit.ingest.load",
    "ecredit.ingest.nfkc",
    "ecredit.ingest.sqlexpr",
    "ecredit.quality.expectations",
    "ecredit.quality.rule_columns",
    "ecredit.quality.verdict",
    "ecredit.state.build",
    "ecredit.state.changes",
    "ecredit.state.fold",
    "ecredit.state.rescore",
    "ecredit.scoring.score",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, *, module_level_only: bool) -> set[str]:
    """The modules ``name`` imports (ecredit's own resolved to modules; others by top package)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if module_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", child)
                for a in child.names:
                    full = f"{base}.{a.name}"
                    out.add(full if full in MODULES else base)
            visit(child)

    visit(tree)
    resolved = set()
    for m in out:
        if m.startswith("ecredit"):
            while m not in MODULES and "." in m:
                m = m.rsplit(".", 1)[0]
            if m != name:
                resolved.add(m)
                # importing a.b.c runs a/__init__ and a/b/__init__ first
                parts = m.split(".")
                # (a package that holds ``name`` is initialised before it: no edge back to it)
                resolved.update(
                    p
                    for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                    if p != name and not name.startswith(p + ".")
                )
        else:
            resolved.add(m.split(".")[0])
    return resolved


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if m not in graph:
                continue
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state:
                found = dfs(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = dfs(n)
            if found:
                return found
    return None


def test_the_rooms_exist():
    for room in ("core", "ingest", "quality", "state", "scoring", "warehouse", "outputs", "airflow", "ops"):
        assert f"ecredit.{room}" in MODULES, room
    assert SPARK_STAGES <= set(MODULES)


def test_no_import_cycle_even_through_function_local_imports():
    graph = {m: {d for d in imports_of(m, module_level_only=False) if d in MODULES} for m in MODULES}
    # a package's __init__ is imported by its modules, which is no cycle unless it imports them back
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


# Modules that import ecredit's own modules inside functions, on purpose: the task bodies the DAG
# file imports (a driver task must not load Spark or GX it does not use), the command line (each
# subcommand loads what it needs), what runs inside Airflow's task processes, Alembic's env.
LAZY_ON_PURPOSE = {"ecredit.pipeline", "ecredit.ops.cli", "ecredit.warehouse.alembic.env"}


def test_function_local_imports_only_where_laziness_is_the_point():
    lazy = {
        m
        for m in MODULES
        if imports_of(m, module_level_only=False) - imports_of(m, module_level_only=True) & set(MODULES)
    }
    unexpected = {m for m in lazy - LAZY_ON_PURPOSE if not m.startswith("ecredit.airflow.")}
    assert not unexpected, f"function-local imports of ecredit modules in {sorted(unexpected)}: import at the top"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def _reaches_pyspark(name: str, seen: set[str]) -> list[str] | None:
    if name in seen:
        return None
    seen.add(name)
    for dep in sorted(imports_of(name, module_level_only=True)):
        if dep == "pyspark":
            return [name, "pyspark"]
        if dep in MODULES:
            path = _reaches_pyspark(dep, seen)
            if path:
                return [name, *path]
    return None


@pytest.mark.parametrize("name", sorted(set(MODULES) - SPARK_STAGES))
def test_pyspark_only_in_the_spark_stages(name):
    path = _reaches_pyspark(name, set())
    assert path is None, "imports pyspark at module level: " + " -> ".join(path)


def test_the_pyspark_check_sees_a_spark_stage():
    assert _reaches_pyspark("ecredit.state.build", set()) is not None
