"""No hot item: the largest share of an issuer's ledger transactions that write one same
item, in-process against moto.

Budget (issue 14 item 3): in a mixed 10,000-operation run of one issuer over many cards
(point grants of several sources, point payments at many merchants, their cancels,
e-money payments and their cancels through the terminals' service), no item (pk, sk) is
written by more than 1/64 of the TransactWriteItems the table receives. DynamoDB lets
one item take part in one transaction at a time, so the share of the most written item
is what caps an issuer's rate of changes: before the report figures were spread over
their own 128 shards (chalicelib/reports/keys.py), the `OUTSTANDING` items took ~1/16.

Counted, never timed: every TransactWriteItems any botocore client sends is seen (the
operations are one issuer's, so every transaction counts), and the share is the count
of the most written item over the number of transactions. The run is deterministic
(seeded; the figures' shards come from the request ids), so the figure is the same on
every run.

    python bench/hot_items.py            # 10,000 operations
    python bench/hot_items.py --quick    # or BENCH_QUICK=1: the first 4,000 of them (CI's time)

`max_item_share()` is the figure, for a fan-out bench to report too. Prints its
figures, then as the last line one JSON object. Exits 1 when over budget.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localdev.fake_aws import use_fake_aws  # noqa: E402

use_fake_aws(in_process=True)  # before anything builds an AWS client

import botocore.client  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib import observability  # noqa: E402
from chalicelib.ledger import keys as ledger_keys  # noqa: E402
from chalicelib.ledger.domain import Actor, Issuer, Source  # noqa: E402
from chalicelib.ledger.service import Ledger  # noqa: E402
from chalicelib.ledger.store import CardStore  # noqa: E402
from chalicelib.rebates.service import Rebates  # noqa: E402
from chalicelib.reports import keys as report_keys  # noqa: E402
from chalicelib.reports.store import ledger_aggregates  # noqa: E402
from chalicelib.table import Claim, Table  # noqa: E402
from chalicelib.terminals.domain import Merchant, Mode, Terminal  # noqa: E402
from chalicelib.terminals.service import Caller, TerminalService  # noqa: E402
from chalicelib.terminals.store import TerminalStore  # noqa: E402
from localdev.moto_serial import serialize_dynamodb  # noqa: E402

observability.logger().setLevel("WARNING")

ISSUER = "niimi"
OPERATIONS = 10_000
CARDS = 1_000
MERCHANTS = 40
TERMINALS_PER_MERCHANT = 2
SEED = 14
BUDGET = 1 / 64
NOW = datetime(2025, 6, 16, 3, 0, tzinfo=timezone.utc)
OPERATOR = Actor("operator", "bench-operator")

# The mix of operations, by weight.
MIX = {"grant": 25, "spend": 35, "cancel": 8, "emoney": 27, "emoney_cancel": 5}
GRANT_SOURCES = (Source.ADMIN, Source.EVENT, Source.CAMPAIGN)


@dataclass
class Share:
    operations: int
    transactions: int
    item: tuple[str, str]
    writes: int
    top: list[tuple[tuple[str, str], int]]
    written: Counter  # transactions per item (pk, sk)
    before: float  # the same run's share had each change's figures gone to its card's shard (0..15)

    @property
    def share(self) -> float:
        return self.writes / self.transactions if self.transactions else 0.0


@contextmanager
def transaction_items() -> Iterator[list[set[tuple[str, str]]]]:
    """The (pk, sk) of every item of every TransactWriteItems sent while the block runs, a
    set per transaction, from any botocore client in the process."""
    seen: list[set[tuple[str, str]]] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(client, operation_name, api_params):
        if client.meta.service_model.service_name == "dynamodb" and operation_name == "TransactWriteItems":
            items = set()
            for action in api_params["TransactItems"]:
                (body,) = action.values()
                key = body.get("Key") or body["Item"]
                items.add((key["pk"]["S"], key["sk"]["S"]))
            seen.append(items)
        return original(client, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting
    try:
        yield seen
    finally:
        botocore.client.BaseClient._make_api_call = original


class Run:
    """One issuer with CARDS cards and MERCHANTS merchants with their store terminals, and
    the ledger and terminals' service as the composition root builds them (the reports'
    aggregates in every ledger change)."""

    def __init__(self, cards: int, rng: random.Random) -> None:
        table = Table.from_settings()  # the table the models are bound to (the settings')
        table.create()
        store = CardStore(table)
        store.put_issuer(Issuer(ISSUER))
        self.ledger = Ledger(store, clock=lambda: NOW, extra_writes=ledger_aggregates)
        self.terminals = TerminalService(self.ledger, TerminalStore(table), clock=lambda: NOW,
                                         rebates=Rebates.on_table(table))
        self.rng = rng
        self.n = 0
        self.tills: list[Terminal] = []
        for m in range(MERCHANTS):
            merchant = Merchant(f"M-{m:03d}", ISSUER, f"店{m}", "新見", "小売")
            self.terminals.store.put_merchant(merchant)
            for t in range(TERMINALS_PER_MERCHANT):
                till = Terminal(f"T-{m:03d}-{t}", ISSUER, Mode.STORE, "", merchant_id=merchant.merchant_id)
                self.terminals.store.put_terminal(till)  # no key: the service is called past the signature
                self.tills.append(till)
        self.cards = [f"0d{n:014x}" for n in range(1, cards + 1)]
        for n, idm in enumerate(self.cards, 1):
            self.ledger.open_card(idm=idm, card_number=f"JW{n:015d}", issuer_id=ISSUER)
            self.ledger.grant(idm, 5000, request_id=f"initial:{idm}", actor=OPERATOR, source=Source.INITIAL)
        self.spends: list[tuple[str, str, Terminal]] = []  # (card, request id, till) not cancelled
        self.records: list[tuple[str, int, Terminal]] = []  # e-money (card, card seq, till) not cancelled
        self.card_seq: Counter = Counter()

    def rid(self, what: str) -> str:
        self.n += 1
        return f"{what}:{self.n}"

    def caller(self, till: Terminal) -> Caller:
        return Caller(till, Claim(f"NONCE#{till.terminal_id}#{self.rid('n')}", "NONCE", error=RuntimeError,
                                  on_replay=True))

    def operation(self, kind: str) -> None:
        rng, idm, till = self.rng, self.rng.choice(self.cards), self.rng.choice(self.tills)
        actor = Actor("terminal", till.terminal_id, merchant=till.merchant_id)
        if kind == "cancel" and self.spends:
            card, spend, till = self.spends.pop(rng.randrange(len(self.spends)))
            self.ledger.cancel_spend(card, spend_request_id=spend, request_id=self.rid("cancel"),
                                     actor=Actor("terminal", till.terminal_id, merchant=till.merchant_id))
        elif kind == "emoney_cancel" and self.records:
            card, seq, till = self.records.pop(rng.randrange(len(self.records)))
            self.terminals.emoney_payment_cancel(self.caller(till), request_id=self.rid("x"), idm=card, card_seq=seq)
        elif kind == "spend":
            rid = self.rid("pay")
            self.ledger.spend(idm, rng.randint(1, 60), request_id=rid, actor=actor, allow_shortfall=True)
            self.spends.append((idm, rid, till))
        elif kind == "emoney":
            self.card_seq[idm] += 1
            seq = self.card_seq[idm]
            self.terminals.emoney_payment(self.caller(till), request_id=self.rid("e"), idm=idm,
                                          amount=rng.randint(100, 3000), paid_at=NOW - timedelta(minutes=1),
                                          card_seq=seq)
            self.records.append((idm, seq, till))
        else:  # a grant (or a cancel with nothing yet to cancel)
            source = rng.choice(GRANT_SOURCES)
            self.ledger.grant(idm, rng.randint(10, 500), request_id=self.rid("grant"), actor=OPERATOR, source=source,
                              reason="キャンペーン" if source is Source.CAMPAIGN else "ボランティア")


def measure(operations: int = OPERATIONS, cards: int = CARDS, seed: int = SEED) -> Share:
    """Run the mix on a fresh mock and count the items of its transactions."""
    rng = random.Random(seed)
    kinds = [k for k, weight in MIX.items() for _ in range(weight)]
    serialize_dynamodb()  # moto backs up only the items a transaction touches, not the whole table
    with mock_aws():
        run = Run(cards, rng)
        gc.collect()
        gc.freeze()  # moto's database lives in this heap: keep full collections off it
        try:
            with transaction_items() as seen:
                for _ in range(operations):
                    run.operation(rng.choice(kinds))
        finally:
            gc.unfreeze()
    written: Counter = Counter()
    for items in seen:
        written.update(items)
    (item, writes), *_ = written.most_common(1) or [(("", ""), 0)]
    return Share(operations, len(seen), item, writes, written.most_common(5), written, card_shard_share(seen))


def card_shard_share(seen: list[set[tuple[str, str]]]) -> float:
    """The baseline, from the same transactions: the largest share had every change put its
    report figures in the shard of its card (chalicelib/ledger/keys.py `shard`, 16), as
    they were before. Every change of the mix is one card's."""
    before: Counter = Counter()
    for items in seen:
        cards = [pk.removeprefix(ledger_keys.CARD) for pk, sk in items if sk == "CARD"]
        for pk, sk in items:
            if pk.startswith(report_keys.AGGREGATE) and len(cards) == 1:
                pk = f"{pk.rsplit('#', 1)[0]}#{ledger_keys.shard(cards[0]):02d}"
            before[pk, sk] += 1
    return max(before.values(), default=0) / len(seen) if seen else 0.0


def max_item_share(operations: int = OPERATIONS) -> float:
    """The largest share of the issuer's ledger transactions that write one same item in a
    mixed run of `operations` operations (grants, spends, cancels, e-money payments and
    their cancels over CARDS cards)."""
    return measure(operations).share


# Quick mode (CI) runs the first operations of the same seeded mix: 4,000 keep the largest
# share well under the budget (about 1/128 of them per figures' shard) in about a third of the time.
QUICK_OPERATIONS = 4_000


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK") == "1"
    started = time.perf_counter()
    result = measure(QUICK_OPERATIONS if quick else OPERATIONS)  # counted, not timed
    print(f"{result.operations} operations over {CARDS} cards, {MERCHANTS} merchants, "
          f"{MERCHANTS * TERMINALS_PER_MERCHANT} tills: {result.transactions} transactions "
          f"({time.perf_counter() - started:.0f} s{', quick' if quick else ''})")
    for (pk, sk), writes in result.top:
        print(f"  {writes:6d}  {writes / result.transactions:.4f}  {pk} {sk}")
    print(f"max item share {result.share:.4f} (budget {BUDGET:.4f} = 1/64); the same run with the figures "
          f"in the card's 16 shards, as before: {result.before:.4f} ({result.before / result.share:.1f}x)")
    print(json.dumps({"max_item_share": round(result.share, 5)}))
    return 0 if result.share <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
