"""The ledger's store is the ledger's own: every other module of chalicelib goes through
the ledger's public face (`Ledger`'s methods), never through `ledger.store` or an import
of `chalicelib.ledger.store`. A source scan, so it also catches code no test runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"
LEDGER = PACKAGE / "ledger"
LEDGER_STORE = "chalicelib.ledger.store"


def _outside_the_ledger() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if LEDGER not in p.parents)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.ImportFrom, path: Path) -> str:
    """The absolute name of the module a `from … import` names."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_ledger(node: ast.expr) -> bool:
    """`ledger` or `<anything>.ledger`: how every context names the ledger it was given."""
    return (isinstance(node, ast.Name) and node.id == "ledger") or (
        isinstance(node, ast.Attribute) and node.attr == "ledger"
    )


def reaches_into_the_ledger_store(source: str, path: Path) -> list[str]:
    """Each place the source imports the ledger's store or uses a ledger's `.store`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.startswith(LEDGER_STORE)]
        elif isinstance(node, ast.ImportFrom):
            module = _imported(node, path)
            names = {f"{module}.{a.name}" for a in node.names}
            if module.startswith(LEDGER_STORE) or LEDGER_STORE in names:
                found.append(f"{node.lineno}: from {module} import …")
        elif isinstance(node, ast.Attribute) and node.attr == "store" and _is_ledger(node.value):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", _outside_the_ledger(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_the_ledger_reaches_into_its_store(path: Path) -> None:
    assert reaches_into_the_ledger_store(path.read_text(encoding="utf-8"), path) == []


@pytest.mark.parametrize(
    "source",
    [
        "from ..ledger.store import CardStore",
        "from ..ledger import store",
        "from chalicelib.ledger.store import CardStore",
        "import chalicelib.ledger.store",
        "idm = self.ledger.store.idm_for_number(n)",
        "state = JobState(ledger.store.table)",
    ],
)
def test_the_scan_finds_each_way_in(source: str) -> None:
    assert reaches_into_the_ledger_store(source, PACKAGE / "jobs" / "expiry.py")


def test_the_scan_lets_the_public_face_and_other_stores_be() -> None:
    source = (
        "from ..ledger.service import Ledger\n"
        "from ..terminals.store import TerminalStore\n"
        "idm = self.ledger.idm_for_number(n)\n"
        "stored = ledger.card_record(idm)\n"
        "x = self.terminals.store.get_txn(idm, 1)\n"
    )
    assert reaches_into_the_ledger_store(source, PACKAGE / "imports" / "service.py") == []
