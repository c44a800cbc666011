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


FANOUT = Path(__file__).resolve().parents[1] / "bench" / "fanout.py"


@pytest.fixture(scope="module")
def bench_fanout():
    spec = importlib.util.spec_from_file_location("bench_fanout", FANOUT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    interval = sys.getswitchinterval()  # the bench shortens it for its threads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.setswitchinterval(interval)
        sys.modules.pop(spec.name, None)
        sys.modules.pop("bench_jobs", None)


@pytest.mark.parametrize("job", ["expiry", "rebate"])
def test_fanout_reaches_every_card_once_with_one_worker_or_eight_at_the_same_calls(bench_fanout, monkeypatch, job):
    """bench/fanout.py's two runs do the same work (its own check: every card once), so
    their time ratio is the workers' alone. Counts calls, never times them."""
    monkeypatch.setattr(bench_fanout, "LATENCY_S", 0.0)
    one, many = bench_fanout.run_once(job, 60, 1), bench_fanout.run_once(job, 60, 8)
    assert one.cards == many.cards == 60
    assert one.calls == many.calls  # same pieces, same calls
