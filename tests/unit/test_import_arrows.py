"""The arrows between contexts run one way (issue 13, DESIGN's shape): a context uses
another through its service, never its store or routes; the ledger, the core, imports no
other context; `table.py` and `http.py`, beneath every context, import none; no module imports a
`routes` module (only app.py registers them); the campaigns do not import the jobs (the
jobs call the campaigns' service).

The imports are read from the source with `ast`, relative ones resolved. `KNOWN` lists
the reach-throughs still to be removed (none now): the test fails on any new one, and on
a listed one that is gone (so the list only shrinks)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "chalicelib"
CONTEXTS = {p.name for p in LIB.iterdir() if p.is_dir() and any(p.glob("*.py"))}

# (importing module, imported module) pairs still to be removed: none left.
KNOWN: set[tuple[str, str]] = set()


def _module(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module the file imports (for `from X import store` or `routes`, X.store)."""
    module = _module(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{a.name}" for a in node.names if a.name in ("store", "routes"))
    return {m for m in found if m.startswith("chalicelib")}


def _context(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in CONTEXTS else None


def _violations(root: Path = ROOT) -> set[tuple[str, str]]:
    bad: set[tuple[str, str]] = set()
    for path in (root / "chalicelib").rglob("*.py"):
        module = _module(path, root)
        own = _context(module)
        for target in _imports(path, root):
            theirs = _context(target)
            leaf = target.rsplit(".", 1)[-1]
            if leaf == "routes" and target.count(".") == 2:
                bad.add((module, target))  # no module imports a routes module
            elif own and theirs and theirs != own and leaf == "store" and target.count(".") == 2:
                bad.add((module, target))  # another context's store
            elif own == "ledger" and theirs and theirs != "ledger":
                bad.add((module, target))  # the core imports no other context
            elif module in ("chalicelib.table", "chalicelib.http") and theirs:
                bad.add((module, target))  # beneath every context (http.py: every route imports it)
            elif own == "campaigns" and theirs == "jobs":
                bad.add((module, target))  # one way: jobs -> campaigns' service
    return bad


def test_the_contexts_are_what_the_test_thinks():
    assert {"ledger", "terminals", "mypage", "operators", "imports", "reports", "jobs"} <= CONTEXTS


def test_no_new_reach_through_between_contexts():
    new = _violations() - KNOWN
    assert not new, "use the other context's service: " + ", ".join(f"{a} -> {b}" for a, b in sorted(new))


def _gone(known: set[tuple[str, str]], found: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The listed reach-throughs the scan no longer finds (to be removed from the list)."""
    return known - found


def test_the_known_reach_throughs_only_shrink():
    gone = _gone(KNOWN, _violations())
    assert not gone, "remove from KNOWN: " + ", ".join(f"{a} -> {b}" for a, b in sorted(gone))


def test_a_listed_reach_through_that_vanished_is_reported(tmp_path):
    (tmp_path / "chalicelib" / "jobs").mkdir(parents=True)
    (tmp_path / "chalicelib" / "jobs" / "rebate.py").write_text("from ..terminals.service import TerminalService\n")
    listed = {("chalicelib.jobs.rebate", "chalicelib.terminals.store")}
    assert _gone(listed, _violations(tmp_path)) == listed
    (tmp_path / "chalicelib" / "jobs" / "rebate.py").write_text("from ..terminals.store import TerminalStore\n")
    assert _gone(listed, _violations(tmp_path)) == set()


def test_the_scan_sees_each_kind_of_reach_through(tmp_path):
    lib = tmp_path / "chalicelib"
    files = {
        "table.py": "from .ledger.errors import Contended\n",
        "http.py": "from .terminals.errors import SignatureRejected\n",
        "ledger/service.py": "from ..reports.store import aggregate_writes\n",
        "imports/routes.py": "from ..operators.routes import IAM\n",
        "jobs/rebate.py": "from chalicelib.terminals import store\nfrom ..terminals.service import TerminalService\n",
        "jobs/expiry.py": "from .store import JobState\n",  # its own store: fine
        "campaigns/service.py": "from ..jobs import admin_grants\n",
    }
    for name, text in files.items():
        (lib / name).parent.mkdir(parents=True, exist_ok=True)
        (lib / name).write_text(text)
    assert _violations(tmp_path) == {
        ("chalicelib.table", "chalicelib.ledger.errors"),
        ("chalicelib.http", "chalicelib.terminals.errors"),
        ("chalicelib.ledger.service", "chalicelib.reports.store"),
        ("chalicelib.imports.routes", "chalicelib.operators.routes"),
        ("chalicelib.jobs.rebate", "chalicelib.terminals.store"),
        ("chalicelib.campaigns.service", "chalicelib.jobs"),
    }


def _graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the chalicelib modules it imports (`from . import keys` is the keys module,
    not the package)."""
    modules = {_module(path, root): path for path in (root / "chalicelib").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = _imports_source(module, path, node)
                for alias in node.names:
                    found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
        graph[module] = {m for m in found if m in modules and m != module}
    return graph


def _imports_source(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = (module if path.name == "__init__.py" else module.rpartition(".")[0]).split(".")
    return ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return exc.args[1]
    return None


def test_no_circle_of_imports():
    """Arrows one way also means no loop: the records' owner is passed to the reconciliation
    as a Protocol, not imported, because the records write through the rebates, which write
    the reconciliation's awaiting list."""
    assert _circle(_graph()) is None


def test_the_circle_check_sees_a_loop(tmp_path):
    lib = tmp_path / "chalicelib"
    (lib / "rebates").mkdir(parents=True)
    (lib / "terminals").mkdir()
    (lib / "rebates" / "service.py").write_text("from ..terminals.service import TerminalService\n")
    (lib / "terminals" / "service.py").write_text("from ..rebates import service\n")
    assert set(_circle(_graph(tmp_path))) == {"chalicelib.rebates.service", "chalicelib.terminals.service"}
