"""DynamoDB round trips per terminal operation, from bench/ledger.py's own counting.

Deterministic: counts calls, never times them (the timings are bench/ledger.py's job).
Budget (DESIGN.md): at most 2 calls per operation, warm; a balance read is one GetItem.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "ledger.py"


@pytest.fixture(scope="module")
def bench_ledger():
    spec = importlib.util.spec_from_file_location("bench_ledger", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_a_spend_costs_at_most_two_dynamodb_calls_and_a_balance_one(bench_ledger):
    spend, balance = bench_ledger.count_calls()

    assert 1 <= spend <= 2  # at least one, or the counting itself is broken
    assert balance == 1


HOT_ITEMS = Path(__file__).resolve().parents[1] / "bench" / "hot_items.py"


def test_no_report_item_is_in_more_than_a_few_of_the_changes_of_a_short_mixed_run():
    """bench/hot_items.py counted on a short run (the 10,000-operation figure is the
    benchmark's): the report figures spread over their 128 shards, so no AGG# item is in
    more than 1/32 of the transactions (the card's 16 shards gave the outstanding items ~1/16),
    and every change is one transaction."""
    spec = importlib.util.spec_from_file_location("bench_hot_items", HOT_ITEMS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        run = module.measure(operations=320, cards=40)
    finally:
        sys.modules.pop(spec.name, None)
    assert run.transactions == run.operations == 320
    figures = {item: n for item, n in run.written.items() if item[0].startswith("AGG#")}
    assert len(figures) > 128
    assert max(figures.values()) <= run.transactions / 32


AUDIT_BENCH = Path(__file__).resolve().parents[1] / "bench" / "audit_cost.py"


@pytest.fixture(scope="module")
def bench_audit():
    spec = importlib.util.spec_from_file_location("bench_audit_cost", AUDIT_BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_the_daily_audit_costs_the_same_calls_whatever_the_length_of_the_history(bench_audit):
    short, long = bench_audit.daily_calls(10, 2, 5), bench_audit.daily_calls(10, 20, 5)

    assert "Scan" not in short and "Scan" not in long
    assert sum(long.values()) <= 1.2 * sum(short.values())
    assert short.get("GetItem", 0) + short.get("Query", 0) >= 2 * 5  # the changed cards were read
