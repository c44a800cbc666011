"""Ledger server time and DynamoDB round trips, in-process against moto.

Budgets (DESIGN.md, Performance budgets):
  * a spend (`Ledger.spend`) and a balance read (`Ledger.balance`) take at most 1.5x
    the time of the same DynamoDB requests sent bare with a boto3 low-level client,
    measured in the same run: BatchGetItem + TransactWriteItems for a spend, GetItem
    for a balance;
  * at most 2 DynamoDB calls per operation, warm.

The bare requests are modelled on the exact parameters the service sends (captured
once), with fresh keys and versions per iteration so every condition passes. Service
and bare runs alternate on the same moto table, and each block of iterations starts a
fresh mock, so both sides always see tables of the same size.

    python bench/ledger.py            # full run
    python bench/ledger.py --quick    # or BENCH_QUICK=1: fewer iterations

Prints its figures, then as the last line one JSON object. Exits 1 when over budget.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localdev.fake_aws import use_fake_aws  # noqa: E402

use_fake_aws(in_process=True)  # before anything builds an AWS client

import boto3  # noqa: E402
import botocore.client  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib.ledger.domain import Actor, Issuer, Source  # noqa: E402
from chalicelib.ledger.service import Ledger  # noqa: E402
from chalicelib.ledger.store import CardStore  # noqa: E402
from chalicelib.reports.store import ledger_aggregates  # noqa: E402
from chalicelib.table import Table  # noqa: E402
from localdev.moto_serial import serialize_dynamodb  # noqa: E402

REGION = "ap-northeast-1"
ISSUER = "niimi"
TERMINAL = Actor("terminal", "bench-terminal", merchant="bench-merchant")
OPERATOR = Actor("operator", "bench-operator")
GRANT = 10_000_000  # one lot big enough for every spend of a block
SPEND = 10

BUDGET_RATIO = 1.5
BUDGET_CALLS = 2


def fixed_clock() -> datetime:
    return datetime(2025, 6, 2, 1, 0, tzinfo=timezone.utc)


# --- counting DynamoDB calls ---------------------------------------------------------


@dataclass
class CallLog:
    """DynamoDB API calls seen while a `record_calls` block runs."""

    calls: list[tuple[str, dict]] = field(default_factory=list)  # every client in the process
    on_store_client: list[str] = field(default_factory=list)  # via the store's client hook only

    @property
    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()
        self.on_store_client.clear()


@contextmanager
def record_calls(store: CardStore | None = None) -> Iterator[CallLog]:
    """Record every DynamoDB API call made by any botocore client in the process, with
    its parameters, and (given a store) the calls seen by a `before-call.dynamodb`
    hook on `store.connection.client`.

    The process-wide record is the one that counts: by default PynamoDB gives each
    Model class its own connection (its own botocore session and client), so unless
    the store makes every model share its connection, a call through e.g.
    `CardItem.get` would not pass through the store's client and that hook would
    miss it. The difference is reported.
    """
    log = CallLog()
    original = botocore.client.BaseClient._make_api_call

    def counting(client, operation_name, api_params):
        if client.meta.service_model.service_name == "dynamodb":
            log.calls.append((operation_name, copy.deepcopy(api_params)))
        return original(client, operation_name, api_params)

    def hook(model, **_):
        log.on_store_client.append(model.name)

    botocore.client.BaseClient._make_api_call = counting
    events = store.connection.client.meta.events if store is not None else None
    if events is not None:
        events.register("before-call.dynamodb", hook, unique_id="bench-ledger-count")
    try:
        yield log
    finally:
        botocore.client.BaseClient._make_api_call = original
        if events is not None:
            events.unregister("before-call.dynamodb", unique_id="bench-ledger-count")


# --- a world: one fresh moto table, the service, a bare client ------------------------


class World:
    """A fresh moto DynamoDB with the ledger table, one issuer, a Ledger and a bare
    boto3 client. Use inside `mock_aws()`."""

    def __init__(self) -> None:
        table = Table.from_settings()  # the table the models are bound to (the settings')
        table.create()
        self.store = CardStore(table)
        self.store.put_issuer(Issuer(ISSUER))
        self.ledger = Ledger(self.store, clock=fixed_clock, extra_writes=ledger_aggregates)
        self.bare = boto3.client("dynamodb", region_name=REGION)
        self._n = 0

    def new_card(self, points: int = GRANT) -> str:
        self._n += 1
        idm = f"01{self._n:014x}"
        self.ledger.open_card(idm=idm, card_number=f"JW{self._n:015d}", issuer_id=ISSUER)
        self.ledger.grant(idm, points, request_id=f"grant-{idm}", actor=OPERATOR, source=Source.INITIAL)
        return idm

    def next_request(self) -> str:
        self._n += 1
        return f"bench-spend-{self._n}"

    def spend(self, idm: str) -> dict:
        return self.ledger.spend(idm, SPEND, request_id=self.next_request(), actor=TERMINAL)

    def balance(self, idm: str):
        return self.ledger.balance(idm)


# --- the bare requests, modelled on what the service sends ---------------------------


@dataclass
class Templates:
    """The exact parameters of one service spend and one service balance read."""

    idm: str
    batch_get: dict
    transact: dict
    get_item: dict


def capture_templates(world: World, idm: str) -> Templates:
    """Capture the parameters of one warm spend and one warm balance read of `idm`."""
    world.spend(idm)
    world.balance(idm)  # warm: issuer cached, every client built
    with record_calls() as log:
        world.spend(idm)
    spend_calls = dict(log.calls)
    if set(spend_calls) != {"BatchGetItem", "TransactWriteItems"} or len(log.calls) != 2:
        raise RuntimeError(f"a spend no longer makes BatchGetItem + TransactWriteItems: {log.ops}")
    with record_calls() as log:
        world.balance(idm)
    if log.ops != ["GetItem"]:
        raise RuntimeError(f"a balance read no longer makes one GetItem: {log.ops}")
    return Templates(idm, spend_calls["BatchGetItem"], spend_calls["TransactWriteItems"], log.calls[0][1])


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int) -> dict:
    return {"N": str(value)}


class BareCard:
    """A card written and read only by bare boto3 requests shaped like the service's:
    the same item attributes and sizes, new keys and versions each time."""

    def __init__(self, world: World, templates: Templates, idm: str) -> None:
        self.client = world.bare
        self.t = templates
        self.idm = idm
        self.version = 0
        self.seq = 0
        self.requests = 0
        card_put = self._put("card")
        item = copy.deepcopy(card_put["Item"])
        item["pk"] = _s(f"CARD#{idm}")
        item["version"] = _n(1)
        item["seq"] = _n(0)
        self.client.put_item(TableName=card_put["TableName"], Item=item)
        self.version, self.seq = 1, 0

    def _put(self, kind: str) -> dict:
        for entry in self.t.transact["TransactItems"]:
            put = entry.get("Put")
            if put and put["Item"].get("type", {}).get("S") == kind:
                return put
        raise RuntimeError(f"the captured transaction has no {kind} put")

    def spend_requests(self) -> tuple[dict, dict]:
        """The next spend's BatchGetItem and TransactWriteItems parameters."""
        self.requests += 1
        entry_id = hashlib.sha256(f"bare-{self.idm}-{self.requests}".encode()).hexdigest()
        card_pk, req_pk = f"CARD#{self.idm}", f"REQ#{entry_id}"
        old_card_pk = f"CARD#{self.t.idm}"

        batch = copy.deepcopy(self.t.batch_get)
        for table in batch["RequestItems"].values():
            for key in table["Keys"]:
                key["pk"] = _s(card_pk if key["pk"]["S"] == old_card_pk else req_pk)

        seq = self.seq + 1
        transact = copy.deepcopy(self.t.transact)
        for entry in transact["TransactItems"]:
            if "Update" in entry:
                continue  # the report figures: unconditional ADDs, sent as they are
            put = entry["Put"]
            item, kind = put["Item"], put["Item"]["type"]["S"]
            if kind == "card":
                item["pk"] = _s(card_pk)
                item["seq"] = _n(seq)
                item["version"] = _n(self.version + 1)
                (name,) = [k for k, v in put["ExpressionAttributeNames"].items() if v == "version"]
                (placeholder,) = put["ExpressionAttributeValues"]
                assert put["ConditionExpression"] == f"{name} = {placeholder}", put["ConditionExpression"]
                put["ExpressionAttributeValues"][placeholder] = _n(self.version)
            elif kind == "entry":
                item["pk"] = _s(card_pk)
                item["sk"] = _s(f"ENTRY#{seq:010d}")
            elif kind == "request":
                item["pk"] = _s(req_pk)
                item["idm"] = _s(self.idm)
                item["seq"] = _n(seq)
            else:
                raise RuntimeError(f"unexpected item type {kind!r} in the captured transaction")
        return batch, transact

    def committed(self) -> None:
        self.version += 1
        self.seq += 1

    def get_request(self) -> dict:
        params = copy.deepcopy(self.t.get_item)
        params["Key"]["pk"] = _s(f"CARD#{self.idm}")
        return params


# --- timing --------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Timings:
    spend: list[float] = field(default_factory=list)
    bare_spend: list[float] = field(default_factory=list)
    balance: list[float] = field(default_factory=list)
    bare_balance: list[float] = field(default_factory=list)


def run_block(timings: Timings, iterations: int, warmup: int) -> None:
    """One fresh mock: warm up, then alternate service and bare runs on one table."""
    with mock_aws():
        world = World()
        svc_idm = world.new_card()
        templates = capture_templates(world, svc_idm)
        bare = BareCard(world, templates, "02BA5E0000000001")
        client = world.bare

        def bare_spend() -> None:
            batch, transact = pending
            client.batch_get_item(**batch)
            client.transact_write_items(**transact)

        for i in range(warmup + iterations):
            # Build the bare requests outside the timed section: they stand for the
            # floor, the two calls alone.
            pending = bare.spend_requests()
            get_params = bare.get_request()
            steps = [
                ("spend", lambda: world.spend(svc_idm)),
                ("bare_spend", bare_spend),
                ("balance", lambda: world.balance(svc_idm)),
                ("bare_balance", lambda params=get_params: client.get_item(**params)),
            ]
            if i % 2:  # alternate who goes first
                steps = [steps[1], steps[0], steps[3], steps[2]]
            results = {name: _timed(fn) for name, fn in steps}
            bare.committed()
            if i >= warmup:
                for name, seconds in results.items():
                    getattr(timings, name).append(seconds)


def measure(*, blocks: int, iterations: int, warmup: int) -> dict:
    """Time spends and balance reads against their bare requests; return the medians."""
    serialize_dynamodb()
    timings = Timings()
    for _ in range(blocks):
        gc.collect()
        run_block(timings, iterations, warmup)
    med = {name: statistics.median(values) for name, values in vars(timings).items()}
    return {
        "samples": len(timings.spend),
        "median_s": med,
        # the service's own time per operation: median of the paired differences
        "overhead_s": {
            "spend": statistics.median(a - b for a, b in zip(timings.spend, timings.bare_spend, strict=True)),
            "balance": statistics.median(a - b for a, b in zip(timings.balance, timings.bare_balance, strict=True)),
        },
        "spend_ratio_vs_bare": med["spend"] / med["bare_spend"],
        "balance_ratio_vs_bare": med["balance"] / med["bare_balance"],
    }


class CallCounts(NamedTuple):
    spend: int
    balance: int


def trace_calls() -> dict[str, CallLog]:
    """The DynamoDB calls of one warm spend and one warm balance read."""
    serialize_dynamodb()
    with mock_aws():
        world = World()
        idm = world.new_card()
        world.spend(idm)  # warm: the issuer is cached after the first operation
        world.balance(idm)
        with record_calls(world.store) as spend_log:
            world.spend(idm)
        with record_calls(world.store) as balance_log:
            world.balance(idm)
    return {"spend": spend_log, "balance": balance_log}


def count_calls() -> CallCounts:
    """DynamoDB calls made by one warm spend and one warm balance read."""
    logs = trace_calls()
    return CallCounts(len(logs["spend"].calls), len(logs["balance"].calls))


# --- main ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    blocks, iterations, warmup = (3, 10, 3) if quick else (10, 25, 5)

    logs = trace_calls()
    counts = CallCounts(len(logs["spend"].calls), len(logs["balance"].calls))
    print("DynamoDB calls, warm (any client in the process):")
    for name, log in logs.items():
        print(f"  {name:<8} {len(log.calls)}  {', '.join(log.ops)}")
        missed = len(log.calls) - len(log.on_store_client)
        if missed:
            print(f"           ({missed} of them not through store.connection.client: "
                  "a model has a botocore client of its own)")

    result = measure(blocks=blocks, iterations=iterations, warmup=warmup)
    med = result["median_s"]
    print(f"\nServer time vs the same requests bare with boto3 "
          f"(moto, in-process, {result['samples']} interleaved samples each, medians):")
    print(f"  spend    service {med['spend'] * 1e3:7.3f} ms   bare BatchGetItem+TransactWriteItems "
          f"{med['bare_spend'] * 1e3:7.3f} ms   ratio {result['spend_ratio_vs_bare']:.3f}")
    print(f"  balance  service {med['balance'] * 1e3:7.3f} ms   bare GetItem "
          f"{med['bare_balance'] * 1e3:7.3f} ms   ratio {result['balance_ratio_vs_bare']:.3f}")
    extra = result["overhead_s"]
    print(f"  service's own time over bare (median of paired differences): "
          f"spend {extra['spend'] * 1e3:.3f} ms, balance {extra['balance'] * 1e3:.3f} ms")
    print(f"  budget: ratio <= {BUDGET_RATIO}, calls <= {BUDGET_CALLS}" + ("  (quick mode)" if quick else ""))

    figures = {
        "spend_ratio_vs_bare": round(result["spend_ratio_vs_bare"], 3),
        "balance_ratio_vs_bare": round(result["balance_ratio_vs_bare"], 3),
        "ddb_calls_per_spend": counts.spend,
        "ddb_calls_per_balance": counts.balance,
    }
    over = [
        name for name, value, budget in (
            ("spend_ratio_vs_bare", result["spend_ratio_vs_bare"], BUDGET_RATIO),
            ("balance_ratio_vs_bare", result["balance_ratio_vs_bare"], BUDGET_RATIO),
            ("ddb_calls_per_spend", counts.spend, BUDGET_CALLS),
            ("ddb_calls_per_balance", counts.balance, BUDGET_CALLS),
        )
        if value > budget
    ]
    if over:
        print("OVER BUDGET: " + ", ".join(over))
    print(json.dumps(figures))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
