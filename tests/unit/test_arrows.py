"""The arrows between modules run one way (issue 13, item 2), read from the source with
`ast`, so a new import that points back fails here rather than in review:

- no `routes` module is imported by another module of chalicelib (app.py registers them);
- chalicelib/table.py imports no context;
- the ledger imports no other context;
- the campaigns do not import the jobs (the jobs call the campaigns' service)."""

from __future__ import annotations

import ast
from pathlib import Path

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"
CONTEXTS = {p.name for p in CHALICELIB.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def imported(path: Path) -> set[str]:
    """The chalicelib modules `path` imports, as dotted names under chalicelib
    ("ledger.errors", "table"), at any depth of the file (lazy imports count)."""
    package = path.relative_to(CHALICELIB).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                module = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith("chalicelib."):
                module = node.module.split(".")[1:]
            else:
                continue
            names.add(".".join(module))
            names.update(".".join([*module, alias.name]) for alias in node.names)  # `from . import routes`
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("chalicelib.") for a in node.names if a.name.startswith("chalicelib."))
    return {n for n in names if n}


def modules(under: Path = CHALICELIB) -> list[Path]:
    return sorted(under.rglob("*.py"))


def context_of(name: str) -> str | None:
    first = name.split(".")[0]
    return first if first in CONTEXTS else None


def test_no_routes_module_is_imported_by_another_module():
    found = [(str(p.relative_to(CHALICELIB)), n) for p in modules() for n in imported(p)
             if n.split(".")[-1] == "routes" and n.count(".") == 1]
    assert found == []


def test_table_imports_no_context():
    assert {n for n in imported(CHALICELIB / "table.py") if context_of(n)} == set()


def test_the_ledger_imports_no_other_context():
    found = [(str(p.relative_to(CHALICELIB)), n) for p in modules(CHALICELIB / "ledger") for n in imported(p)
             if context_of(n) not in (None, "ledger")]
    assert found == []


def test_the_campaigns_do_not_import_the_jobs():
    found = [(str(p.relative_to(CHALICELIB)), n) for p in modules(CHALICELIB / "campaigns") for n in imported(p)
             if context_of(n) == "jobs"]
    assert found == []
