"""The architecture as a contract: which parts of the package may import which.

Every ``import`` in the package is read from source, lazy ones inside functions and
``TYPE_CHECKING`` blocks included, so a wrong arrow fails here with its file and line.

- ``core`` is the pure replay core: it imports only ``core`` and ``exceptions``, and no
  Django, no Celery, no database driver.
- ``store`` applies the core's decisions in the database: it imports nothing of the worker,
  the operator tools, the admin, the management commands, the testing toolkit or the
  public API built on it.
- ``worker`` (the Celery shell) imports no admin, management commands or testing toolkit.
- Nothing in the package imports the example project, the tests, the benchmarks or the
  chaos harness.
- No import cycle among the package's modules, except the documented delegations
  ``models -> runs`` (and ``models -> updates``) that ``run.signal()`` and its siblings need, and
  ``models -> schedules`` that ``schedule.pause()`` and its siblings need. Imports under
  ``if TYPE_CHECKING:`` never execute, so they count for the layers but not for cycles.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "durable_django"
ROOT = PACKAGE.parent


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted (a module of the package, or a foreign top-level name)
    where: str  # file:line
    type_only: bool = False  # under ``if TYPE_CHECKING:``: read by the type checker, never executed

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "migrations" not in path.parts}


MODULES = _modules()


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The modules ``from X import a, b`` imports: ``X.a`` where that is a module, else ``X``."""
    if node.level:
        base = source.split(".") if is_package else source.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        parent = ".".join(base + ([node.module] if node.module else []))
    else:
        parent = node.module or ""
    targets = []
    for alias in node.names:
        candidate = f"{parent}.{alias.name}"
        targets.append(candidate if candidate in MODULES else parent)
    return targets


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def _imports() -> list[Import]:
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        type_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(name, path.name == "__init__.py", node)
            else:
                continue
            found.extend(Import(name, target, where, id(node) in type_only) for target in targets)
    return found


IMPORTS = _imports()


def _in(module: str, *packages: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def _violations(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [str(edge) for edge in IMPORTS if _in(edge.source, *sources) and _in(edge.target, *forbidden)]


def test_the_contract_sees_every_part_of_the_package() -> None:
    # A contract that reads no files passes whatever the imports are.
    for package in ("core", "store", "worker", "ops"):
        assert any(_in(edge.source, f"durable_django.{package}") for edge in IMPORTS), package
    assert len(IMPORTS) > 200


def test_core_imports_only_core_and_exceptions() -> None:
    allowed = ("durable_django.core", "durable_django.exceptions")
    wrong = [
        str(edge)
        for edge in IMPORTS
        if _in(edge.source, "durable_django.core")
        and (
            (_in(edge.target, "durable_django") and not _in(edge.target, *allowed))
            or _in(edge.target, "django", "celery", "kombu", "psycopg", "psycopg2")
        )
    ]
    assert not wrong, "the replay core must stay pure (no Django, no Celery, nothing above it):\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        (
            "durable_django.store",
            (
                "durable_django.worker",
                "durable_django.ops",
                "durable_django.admin",
                "durable_django.management",
                "durable_django.testing",
                "durable_django.tasks",
                "durable_django.runs",
                "durable_django.definitions",
            ),
        ),
        ("durable_django.worker", ("durable_django.admin", "durable_django.management", "durable_django.testing")),
        ("durable_django", ("example_project", "tests", "benchmarks", "chaos")),
    ],
)
def test_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = _violations((layer,), forbidden)
    assert not wrong, f"{layer} must not import {', '.join(forbidden)}:\n" + "\n".join(wrong)


#: The cycles the design allows: a WorkflowRun's and a Schedule's methods delegate to the public API.
ALLOWED_EDGES = {
    ("durable_django.models.runs", "durable_django.runs"),
    ("durable_django.models.runs", "durable_django.updates"),
    ("durable_django.models.schedules", "durable_django.schedules"),
}


def _cycles() -> list[list[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for edge in IMPORTS:
        if (
            edge.target in MODULES
            and edge.target != edge.source
            and not edge.type_only
            and (edge.source, edge.target) not in ALLOWED_EDGES
        ):
            graph[edge.source].add(edge.target)
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def test_no_import_cycles_but_the_documented_one() -> None:
    cycles = _cycles()
    detail = []
    for component in cycles:
        members = set(component)
        edges = [str(e) for e in IMPORTS if e.source in members and e.target in members and not e.type_only]
        detail.append(" <-> ".join(component) + "\n  " + "\n  ".join(edges))
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_the_cycle_check_finds_a_cycle() -> None:
    # models -> runs -> ... -> models exists; without the allowance it must be reported.
    saved = set(ALLOWED_EDGES)
    ALLOWED_EDGES.clear()
    try:
        assert _cycles(), "the cycle finder missed models -> runs -> store -> models"
    finally:
        ALLOWED_EDGES.update(saved)


def test_type_only_imports_are_told_apart() -> None:
    querysets = [edge for edge in IMPORTS if edge.source == "durable_django.store.querysets"]
    assert any(edge.type_only and edge.target == "durable_django.models" for edge in querysets)
    assert not any(edge.type_only for edge in querysets if edge.target.startswith("django"))


def test_no_module_is_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines (split them by concept): {long}"
