"""The daily audit follows the work: its DynamoDB calls do not grow with the history, and
its (issuer, shard, day) pieces overlap on workers. In-process against moto.

1. `audit_cost_ratio_10x_history()`: the daily audit's DynamoDB calls on a day when the
   same cards change the same way, once with every card holding H older entries and once
   with 10 H. Budget: <= 1.2 (a scan or a walk of every chain would make it ~10).
2. `audit_speedup(workers)`: the daily audit of >= 2,000 changed cards with a per-call
   DynamoDB latency injected in the caller's thread (before botocore sends the call, so
   outside localdev/moto_serial.py's lock, as network time overlaps on real workers),
   run with 1 and with `workers` threads over the shards: time(1) / time(workers).
   Budget: >= 6 with 8 workers. Both runs check the same day's cards (the day's anchor is
   removed between them; the bench's anchors bucket is not locked for that reason).

    python bench/audit_cost.py            # 200 cards (ratio), 2,000 cards (speedup)
    python bench/audit_cost.py --quick    # or BENCH_QUICK=1: 100 cards (ratio), 2,000 (speedup)

A fan-out bench may call the two functions. Prints its figures, then as the last line one
JSON object. Exits 1 when over budget.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localdev.fake_aws import use_fake_aws  # noqa: E402

use_fake_aws(in_process=True)  # before anything builds an AWS client

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib import observability  # noqa: E402
from chalicelib.ledger import keys  # noqa: E402
from chalicelib.ledger.chain import GENESIS, canonical_json, link  # noqa: E402
from chalicelib.ledger.domain import Actor, Card, CardStatus, Entry, Issuer  # noqa: E402
from chalicelib.ledger.service import Ledger  # noqa: E402
from chalicelib.ledger.store import CardItem, CardStore, EntryItem, _card_item  # noqa: E402
from chalicelib.reports import audit as audit_module  # noqa: E402
from chalicelib.reports import keys as report_keys  # noqa: E402
from chalicelib.reports.audit import run_audit  # noqa: E402
from chalicelib.reports.store import ReportStore  # noqa: E402
from chalicelib.table import Table  # noqa: E402
from localdev.moto_serial import serialize_dynamodb  # noqa: E402


@contextlib.contextmanager
def _quiet():
    """The audit logs a line per run and per piece failure: here they would interleave with
    the figures. Restored after, since tests import these functions."""
    log = observability.logger()
    level = log.log_level
    log.setLevel("WARNING")
    try:
        yield
    finally:
        log.setLevel(level)

REGION = "ap-northeast-1"
ISSUER = "niimi"
ANCHORS = "bench-anchors"
OLD = date(2024, 1, 10)  # the history's day
ANCHORED = date(2025, 6, 2)  # the previous anchor
TODAY = date(2025, 6, 3)  # the day the audit checks
OPERATOR = Actor("operator", "bench")
LATENCY_S = 0.005
BUDGET_RATIO = 1.2
BUDGET_SPEEDUP = 6.0
NOW = datetime(2025, 6, 3, 16, 0, tzinfo=timezone.utc)


def _entry(idm: str, seq: int, prev: str, on: date) -> tuple[str, str]:
    at = datetime(on.year, on.month, on.day, 1, 0, tzinfo=timezone.utc)
    entry = Entry(card=idm, seq=seq, kind="adjust", at=at, day=on, actor=OPERATOR,
                  request=keys.request_id_hash(f"bench:{idm}:{seq}"), movements=(), result={"n": seq})
    body = canonical_json(entry.body())
    return body, link(prev, body)


def write_history(count: int, history: int, *, changed_on: date) -> list[Card]:
    """`count` cards with `history` chained entries each, their card items indexed as
    last written on `changed_on` (batch writes through the store's own item code)."""
    cards = []
    with CardItem.batch_write() as card_items, EntryItem.batch_write() as entries:
        for n in range(1, count + 1):
            idm, head = f"0e{n:014x}", GENESIS
            for seq in range(1, history + 1):
                body, digest = _entry(idm, seq, head, OLD)
                entries.save(EntryItem(*keys.entry(idm, seq), body=body, prev=head, hash=digest))
                head = digest
            card = Card(idm=idm, card_number=f"JW{n:015d}", issuer=ISSUER, status=CardStatus.ACTIVE,
                        seq=history, head=head)
            card_items.save(_card_item(card, 1, None, changed_on))
            cards.append(card)
    return cards


def append_entry(cards: list[Card], on: date) -> None:
    """One more entry on each card, written on `on` (as a day's changes would be)."""
    with CardItem.batch_write() as card_items, EntryItem.batch_write() as entries:
        for card in cards:
            seq = card.seq + 1
            body, digest = _entry(card.idm, seq, card.head, on)
            entries.save(EntryItem(*keys.entry(card.idm, seq), body=body, prev=card.head, hash=digest))
            card_items.save(_card_item(Card(idm=card.idm, card_number=card.card_number, issuer=ISSUER,
                                            status=CardStatus.ACTIVE, seq=seq, head=digest), 2, None, on))


def _stack() -> tuple[Ledger, ReportStore]:
    table = Table.from_settings()
    table.create()
    store = CardStore(table)
    store.put_issuer(Issuer(ISSUER))
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ANCHORS, CreateBucketConfiguration={"LocationConstraint": REGION})
    at = datetime(2025, 6, 3, 15, 5, tzinfo=timezone.utc)
    ledger = Ledger(store, clock=lambda: at)
    ledger.issuer(ISSUER)  # warm, as a container is
    return ledger, ReportStore(table, s3, "bench-reports", anchors_bucket=ANCHORS)


def _counting(store: CardStore) -> dict[str, int]:
    calls: dict[str, int] = {}

    def count(model, **_):
        calls[model.name] = calls.get(model.name, 0) + 1

    store.connection.client.meta.events.register("before-call.dynamodb", count, unique_id="bench-audit-count")
    return calls


def daily_calls(cards: int, history: int, changed: int) -> dict[str, int]:
    """DynamoDB calls of the daily audit of TODAY: `cards` cards with `history` older
    entries, anchored on ANCHORED, of which `changed` got one entry on TODAY."""
    serialize_dynamodb()
    with mock_aws(), _quiet():
        ledger, reports = _stack()
        written = write_history(cards, history, changed_on=OLD)
        run_audit(ledger, reports, ISSUER, ANCHORED, now=NOW)  # the first anchor (scans once, not counted)
        append_entry(written[:changed], TODAY)
        calls = _counting(ledger.store)
        report = run_audit(ledger, reports, ISSUER, TODAY, now=NOW)
        ledger.store.connection.client.meta.events.unregister("before-call.dynamodb", unique_id="bench-audit-count")
        if not report.ok or report.cards != changed:
            raise RuntimeError(f"the daily audit did not check the {changed} changed cards: {report}")
        return calls


def audit_cost_ratio_10x_history(cards: int = 100, history: int = 3, changed_share: float = 0.2) -> float:
    """The daily audit's DynamoDB calls with 10x the older history / with 1x, same day's changes."""
    changed = max(1, int(cards * changed_share))
    small = sum(daily_calls(cards, history, changed).values())
    large = sum(daily_calls(cards, history * 10, changed).values())
    return large / small


def _forget_day(ledger: Ledger, reports: ReportStore, day: date) -> None:
    """Remove the day's anchor (files and item), so a second run checks the same cards again."""
    for prefix in (report_keys.anchor_day_prefix(ISSUER, day), f"anchor-shards/{ISSUER}/{day.isoformat()}/"):
        for page in reports.s3.get_paginator("list_objects_v2").paginate(Bucket=ANCHORS, Prefix=prefix):
            for obj in page.get("Contents", []):
                reports.s3.delete_object(Bucket=ANCHORS, Key=obj["Key"])
    pk, sk = report_keys.anchor(ISSUER, day)
    ledger.store.connection.client.delete_item(TableName=ledger.store.table.name,
                                               Key={"pk": {"S": pk}, "sk": {"S": sk}})


def audit_speedup(workers: int = 8, cards: int = 2_000, latency_s: float = LATENCY_S) -> float:
    """time(the daily audit of `cards` changed cards, 1 worker) / time(the same, `workers`),
    with `latency_s` added to every DynamoDB call in the caller's thread."""
    serialize_dynamodb()
    with mock_aws(), _quiet():
        ledger, reports = _stack()
        written = write_history(cards, 1, changed_on=ANCHORED)
        run_audit(ledger, reports, ISSUER, ANCHORED, now=NOW)
        append_entry(written, TODAY)

        def slow(**_):
            time.sleep(latency_s)

        events = ledger.store.connection.client.meta.events
        events.register("before-call.dynamodb", slow, unique_id="bench-audit-latency")
        times = {}
        try:
            for n in (1, workers):
                _forget_day(ledger, reports, TODAY)
                gc.collect()
                gc.freeze()
                started = time.perf_counter()
                report = run_audit(ledger, reports, ISSUER, TODAY, now=NOW, workers=n)
                times[n] = time.perf_counter() - started
                gc.unfreeze()
                if not report.ok or report.cards != cards:
                    raise RuntimeError(f"the daily audit with {n} workers did not check every card: {report}")
        finally:
            events.unregister("before-call.dynamodb", unique_id="bench-audit-latency")
        print(f"  daily audit of {cards:,} changed cards, {latency_s * 1e3:.0f} ms per call: "
              f"1 worker {times[1]:.2f} s, {workers} workers {times[workers]:.2f} s ({audit_module.SHARDS} shards)")
        return times[1] / times[workers]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    cards = 100 if quick else 200
    print("Daily audit (moto, in-process):")
    small = daily_calls(cards, 3, cards // 5)
    large = daily_calls(cards, 30, cards // 5)
    ratio = sum(large.values()) / sum(small.values())
    for label, calls in (("3 older entries per card ", small), ("30 older entries per card", large)):
        ops = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
        print(f"  {cards} cards, {cards // 5} changed today, {label}: {sum(calls.values())} calls ({ops})")
    print(f"  10x the history: {ratio:.3f}x the calls")
    speedup = audit_speedup(8)
    figures = {"audit_cost_ratio_10x_history": round(ratio, 3), "audit_speedup_8": round(speedup, 2)}
    print(f"  budget: history ratio <= {BUDGET_RATIO}, speedup with 8 workers >= {BUDGET_SPEEDUP}"
          + ("  (quick mode)" if quick else ""))
    over = [name for name, bad in (("audit_cost_ratio_10x_history", ratio > BUDGET_RATIO),
                                   ("audit_speedup_8", speedup < BUDGET_SPEEDUP)) if bad]
    if over:
        print("OVER BUDGET: " + ", ".join(over))
    print(json.dumps(figures))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
