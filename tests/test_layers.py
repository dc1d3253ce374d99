"""The architecture as a contract: which parts of the package may import which.

Every ``import`` in the package is read from source, lazy ones inside functions and
``TYPE_CHECKING`` blocks included, so a wrong arrow fails here with its file and line.

- ``core`` is the pure replay core: it imports only ``core`` and ``exceptions``, and no
  Django, no Celery, no database driver.
- ``store`` applies the core's decisions in the database: it imports only the core, the
  models, ``conf``, ``exceptions`` and ``signals`` — nothing of the worker, the operator
  tools, the admin, the management commands, the testing toolkit or the public API built on it.
- ``worker`` (the Celery shell) imports only the core, the store, the operator tools (the
  sweeper prunes), the models, ``conf`` and ``exceptions``.
- ``ops`` (what operators and commands call) imports only the core, the store, the models,
  ``runs``, ``conf`` and ``exceptions``: no worker, admin or management command.
- ``models`` imports only the core, the store's QuerySets, ``conf`` and ``exceptions``, and the
  public API it delegates to (below).
- Nothing in the package imports the example project, the tests, the benchmarks or the
  chaos harness.
- No import cycle among the package's modules, except the documented delegations
  ``models -> runs`` (and ``models -> updates``) that ``run.signal()`` and its siblings need, and
  ``models -> schedules`` that ``schedule.pause()`` and its siblings need. Imports under
  ``if TYPE_CHECKING:`` never execute, so they count for the layers but not for cycles.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
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


#: What each layer may import from the package (its own modules always): an allow-list, so a new
#: arrow from a lower layer to anything above it fails here, not only the arrows named today.
LAYERS = {
    "durable_django.store": (
        "durable_django.core",
        "durable_django.models",
        "durable_django.conf",
        "durable_django.exceptions",
        "durable_django.signals",
    ),
    # The sweeper prunes finished runs past their retention: the one operator tool it calls.
    "durable_django.worker": (
        "durable_django.core",
        "durable_django.store",
        "durable_django.ops",
        "durable_django.models",
        "durable_django.conf",
        "durable_django.exceptions",
    ),
    "durable_django.ops": (
        "durable_django.core",
        "durable_django.store",
        "durable_django.models",
        "durable_django.runs",
        "durable_django.conf",
        "durable_django.exceptions",
    ),
    # models -> runs, updates, schedules: the delegations of ALLOWED_EDGES below.
    "durable_django.models": (
        "durable_django.core",
        "durable_django.store",
        "durable_django.conf",
        "durable_django.exceptions",
        "durable_django.runs",
        "durable_django.updates",
        "durable_django.schedules",
    ),
}


@pytest.mark.parametrize(("layer", "allowed"), sorted(LAYERS.items()), ids=sorted(LAYERS))
def test_layer_imports_only_what_lies_below_it(layer: str, allowed: tuple[str, ...]) -> None:
    wrong = [
        str(edge)
        for edge in IMPORTS
        if _in(edge.source, layer) and _in(edge.target, "durable_django") and not _in(edge.target, layer, *allowed)
    ]
    assert not wrong, f"{layer} may import only {', '.join(allowed)}:\n" + "\n".join(wrong)


def test_the_package_imports_no_project_of_the_repository() -> None:
    forbidden = ("example_project", "tests", "benchmarks", "chaos")
    wrong = _violations(("durable_django",), forbidden)
    assert not wrong, f"durable_django must not import {', '.join(forbidden)}:\n" + "\n".join(wrong)


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


#: A web process: it starts a run (the outbox publishes its wake-up at commit) and reports what
#: it loaded. Celery's in-memory broker takes the message; a file SQLite database holds the rows.
WEB_PROCESS = """
import sys
import django
django.setup()
from django.core.management import call_command
from django.db import transaction
call_command("migrate", verbosity=0)
import tests.celery_app
from celery.signals import after_task_publish, worker_process_init, worker_ready
from tests.testapp.workflows import echo_workflow
published = []
after_task_publish.connect(lambda sender=None, **kwargs: published.append(sender), weak=False)
with transaction.atomic():
    echo_workflow.start(1)
    assert not published
loaded = sorted(n for n in sys.modules if n == "durable_django.tasks" or n.startswith("durable_django.worker"))
receivers = [str(receiver) for signal in (worker_process_init, worker_ready) for receiver in signal.receivers]
print(",".join(published), loaded, [r for r in receivers if "durable_django" in r])
"""


def test_a_web_process_that_starts_a_run_loads_no_worker_code(tmp_path: Path) -> None:
    # The outbox publishes by task name: a web process never imports the Celery entry point,
    # so it never wires the worker's signals (which tasks.py connects at import).
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_DATABASE": "sqlite",
        "SQLITE_PATH": str(tmp_path / "web.sqlite3"),
        "TEST_DB_NAME": f"layers_web_{os.getpid()}",
        "CELERY_BROKER_URL": "memory://",
    }
    done = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("durable_django.execute "), f"the start published no wake-up: {done.stdout}"
    assert done.stdout.strip().endswith("[] []"), f"a web process loaded worker code: {done.stdout}"
