"""Daily jobs: DynamoDB calls per affected card and how the time grows with the cards,
in-process against moto.

Budgets (DESIGN.md, Performance budgets): at most 3 DynamoDB calls per affected card;
10x the cards at most 11x the time.

The expiry job runs for a day on which every card has one lot due; the rebate job
settles a month in which every card paid by e-money. Each runs with N cards and with
10 N cards, each run in a fresh mock. The N-card run is repeated SMALL_RUNS times and
its median taken: on a shared machine the same thousand cards take anywhere from 0.85x
to 1.15x their usual time, and the 10 N run already averages over ten such stretches.
The cards are written with batch writes (one grant entry each, chained like the
ledger's) through the store's own item and key code, so the card items carry the same
by-expiry index key a grant would give them, and the month's accruals are the items the
terminal API would have written.

    python bench/jobs.py            # 1,000 and 10,000 cards
    python bench/jobs.py --quick    # or BENCH_QUICK=1: 200 and 2,000 cards

Prints its figures, then as the last line one JSON object. Exits 1 when over budget.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localdev.fake_aws import use_fake_aws  # noqa: E402

use_fake_aws(in_process=True)  # before anything builds an AWS client

from moto import mock_aws  # noqa: E402

from chalicelib import observability  # noqa: E402
from chalicelib.job_progress import JobState  # noqa: E402
from chalicelib.jobs.expiry import run_expiry  # noqa: E402
from chalicelib.jobs.rebate import JOB as REBATE_JOB  # noqa: E402
from chalicelib.jobs.rebate import run_rebates  # noqa: E402
from chalicelib.ledger import domain, keys  # noqa: E402
from chalicelib.ledger.chain import GENESIS, canonical_json, link  # noqa: E402
from chalicelib.ledger.domain import Actor, Card, CardStatus, Entry, Issuer, Op, Source  # noqa: E402
from chalicelib.ledger.service import Ledger  # noqa: E402
from chalicelib.ledger.store import CardItem, CardStore, EntryItem, _card_item  # noqa: E402
from chalicelib.rebates import keys as rebate_keys  # noqa: E402
from chalicelib.rebates.service import Rebates  # noqa: E402
from chalicelib.rebates.store import AccrualItem  # noqa: E402
from chalicelib.reconciliation.service import Reconciliation  # noqa: E402
from chalicelib.reconciliation.store import ReconciliationStore  # noqa: E402
from chalicelib.reports.store import ledger_aggregates  # noqa: E402
from chalicelib.table import Table  # noqa: E402
from localdev.moto_serial import serialize_dynamodb  # noqa: E402

# The jobs log a line per run through the app's logger; here they would interleave with the figures.
observability.logger().setLevel("WARNING")

REGION = "ap-northeast-1"
ISSUER = "niimi"
POINTS = 1000
GRANTED_ON = date(2022, 10, 24)  # + 6 months: last valid day 2023-04-23
DUE = domain.expiry_date(GRANTED_ON, 6)
RUN_DAY = DUE + timedelta(days=1)
OPERATOR = Actor("operator", "bench-import")
PAID_MONTH = "2022-10"  # every card pays 12,345 yen: 123 pt each on 2022-11-30 (§11)
PAID_YEN = 12_345
REBATE_DAY = date(2022, 11, 30)

BUDGET_CALLS = 3
SMALL_RUNS = 5
BUDGET_RATIO = 11


def clock_at(day: date):
    """00:05 JST on `day`, when the schedules run."""
    at = datetime(day.year, day.month, day.day, 15, 5, tzinfo=timezone.utc) - timedelta(days=1)
    return lambda: at


def granted_card(n: int) -> tuple[Card, EntryItem]:
    """A card with one lot of POINTS granted on GRANTED_ON, and the grant's entry."""
    idm = f"0c{n:014x}"
    granted_at = datetime(2022, 10, 24, 1, 0, tzinfo=timezone.utc)
    change = domain.grant((), GRANTED_ON, lot_id="1", amount=POINTS, granted_at=granted_at,
                          valid_from=GRANTED_ON, validity_months=6, source=Source.INITIAL)
    entry = Entry(card=idm, seq=1, kind="grant", at=granted_at, day=GRANTED_ON, actor=OPERATOR,
                  request=keys.request_id_hash(f"bench-grant:{idm}"), movements=change.movements,
                  result={"granted": POINTS})
    body = canonical_json(entry.body())
    head = link(GENESIS, body)
    card = Card(idm=idm, card_number=f"JW{n:015d}", issuer=ISSUER, status=CardStatus.ACTIVE,
                lots=change.lots, seq=1, head=head, last_activity=GRANTED_ON)
    return card, EntryItem(*keys.entry(idm, 1), body=body, prev=GENESIS, hash=head)


def write_cards(count: int) -> list[str]:
    idms = []
    with CardItem.batch_write() as cards, EntryItem.batch_write() as entries:
        for n in range(1, count + 1):
            card, entry = granted_card(n)
            cards.save(_card_item(card, 1, None))
            entries.save(entry)
            idms.append(card.idm)
    return idms


def write_accruals(idms: list[str]) -> None:
    with AccrualItem.batch_write() as accruals:
        for idm in idms:
            accruals.save(AccrualItem(*rebate_keys.accrual(ISSUER, PAID_MONTH, idm), issuer=ISSUER,
                                      month=PAID_MONTH, yen=PAID_YEN, weighted=PAID_YEN * 100, payments=1))


@dataclass
class Run:
    job: str
    cards: int
    seconds: float
    calls: dict[str, int]
    points: int

    @property
    def calls_per_card(self) -> float:
        return sum(self.calls.values()) / self.cards


def run_once(job: str, count: int) -> Run:
    serialize_dynamodb()
    with mock_aws():
        table = Table.from_settings()  # the table the models are bound to (the settings')
        table.create()
        store = CardStore(table)
        store.put_issuer(Issuer(ISSUER))
        idms = write_cards(count)
        if job == "rebate":
            write_accruals(idms)
            JobState().mark_done(REBATE_JOB, ISSUER, date(2022, 9, 1))  # September was settled
            ledger = Ledger(store, clock=clock_at(REBATE_DAY), extra_writes=ledger_aggregates)
            work = lambda: run_rebates(ledger, Rebates.on_table(table), ISSUER, on=REBATE_DAY,  # noqa: E731
                                       state=JobState(),
                                       reconciliation=Reconciliation(ledger, ReconciliationStore()))
            expected, op = 123, Op.GRANT
        else:
            ledger = Ledger(store, clock=clock_at(RUN_DAY), extra_writes=ledger_aggregates)
            work = lambda: run_expiry(ledger, ISSUER, on=RUN_DAY, since=DUE, state=JobState())  # noqa: E731
            expected, op = POINTS, Op.EXPIRE
        ledger.issuer(ISSUER)  # warm: read once per container

        calls: dict[str, int] = {}

        def count_call(model, **_):
            calls[model.name] = calls.get(model.name, 0) + 1

        events = store.connection.client.meta.events
        events.register("before-call.dynamodb", count_call, unique_id="bench-jobs-count")
        # moto's tables live in this process's heap, and Python's full collections would walk
        # them all: a cost of the fake database, which real DynamoDB never puts in a Lambda.
        # What exists before the job is frozen out of collection; the job's own garbage is
        # still collected as it would be in a Lambda.
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        try:
            report = work()
        finally:
            elapsed = time.perf_counter() - started
            gc.unfreeze()
            events.unregister("before-call.dynamodb", unique_id="bench-jobs-count")

        if (report.cards, report.points) != (count, count * expected):
            raise RuntimeError(f"the {job} job did not reach every card once: {report}")
        for idm in idms[:: max(1, count // 20)]:  # a sample stays sound
            totals = ledger.totals(idm)
            problems = domain.invariant_violations(totals, ledger.card(idm).lots)
            moved = totals[op] - (POINTS if op is Op.GRANT else 0)
            if problems or not ledger.verify(idm).ok or moved != expected:
                raise RuntimeError(f"card {idm[:4]}… unsound after the {job} job: {problems}")
        return Run(job, count, elapsed, calls, report.points)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    small = 200 if quick else 1_000
    large = small * 10

    figures: dict[str, float] = {}
    over: list[str] = []
    for job, title in (("rebate", f"Monthly rebate, every card paid {PAID_YEN:,} yen in {PAID_MONTH}"),
                       ("expiry", f"Daily expiry, every card with one lot due on {DUE}")):
        smalls = sorted((run_once(job, small) for _ in range(SMALL_RUNS)), key=lambda r: r.seconds)
        median, big = smalls[len(smalls) // 2], run_once(job, large)
        runs = [*smalls, big]
        print(f"{title} (moto, in-process):")
        for r in runs:
            ops = ", ".join(f"{op} {n}" for op, n in sorted(r.calls.items()))
            print(f"  {r.cards:>6} cards  {r.seconds:7.2f} s  {r.seconds / r.cards * 1e3:6.3f} ms/card  "
                  f"{r.calls_per_card:.3f} calls/card  ({ops})" + ("  (median)" if r is median else ""))
        ratio = big.seconds / median.seconds
        calls = max(r.calls_per_card for r in runs)
        print(f"  10x the cards: {ratio:.2f}x the median time")
        figures[f"{job}_calls_per_card"] = round(calls, 3)
        figures[f"{job}_scale_ratio_10x"] = round(ratio, 3)
        over += [name for name, value, budget in ((f"{job}_calls_per_card", calls, BUDGET_CALLS),
                                                   (f"{job}_scale_ratio_10x", ratio, BUDGET_RATIO)) if value > budget]
    print(f"  budget: calls/card <= {BUDGET_CALLS}, ratio <= {BUDGET_RATIO}" + ("  (quick mode)" if quick else ""))
    figures = {key: figures[key] for key in
               ("rebate_calls_per_card", "expiry_calls_per_card", "rebate_scale_ratio_10x", "expiry_scale_ratio_10x")}
    if over:
        print("OVER BUDGET: " + ", ".join(over))
    print(json.dumps(figures))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
