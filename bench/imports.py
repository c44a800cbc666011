"""Card import speed: rows per second importing a card file in-process against moto
(DynamoDB and S3), and the projected time for 30,000 cards.

Each card row costs three DynamoDB calls (open the card: one TransactWriteItems; the
initial grant: one BatchGetItem and one TransactWriteItems), plus a checkpoint every
100 rows. An import longer than one Lambda invocation (15 min) goes on in the next one
from its checkpoint (chalicelib/imports/service.py), so the projection is a guide to how
many invocations a file takes, not a limit. Budget (deterministic): at most 3.05
DynamoDB calls per card row; the timing is printed, not judged (the machine's load and
moto dominate it).

    python bench/imports.py            # 2,000 cards
    python bench/imports.py --quick    # or BENCH_QUICK=1: 500 cards

Prints its figures, then as the last line one JSON object. Exits 1 when over budget.
"""

from __future__ import annotations

import gc
import json
import logging
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

from chalicelib.imports.service import Importer  # noqa: E402
from chalicelib.imports.store import ImportFiles, RunStore  # noqa: E402
from chalicelib.ledger.domain import Issuer  # noqa: E402
from chalicelib.ledger.service import Ledger  # noqa: E402
from chalicelib.ledger.store import CardStore  # noqa: E402
from chalicelib.observability import logger  # noqa: E402
from chalicelib.rebates.service import Rebates  # noqa: E402
from chalicelib.reports.store import ledger_aggregates  # noqa: E402
from chalicelib.table import Table  # noqa: E402
from chalicelib.terminals.service import TerminalService  # noqa: E402
from chalicelib.terminals.store import TerminalStore  # noqa: E402
from localdev.moto_serial import serialize_dynamodb  # noqa: E402

REGION = "ap-northeast-1"
IMPORTS, REPORTS = "bench-imports", "bench-reports"
ISSUER = "niimi"
TARGET = 30_000
LAMBDA_SECONDS = 900 - 60  # one invocation, less the reserve kept for the last checkpoint
BUDGET_CALLS = 3.05  # open + read + grant per card, and a checkpoint every 100 rows


def cards_file(count: int) -> bytes:
    lines = ["card_number,idm,birth_date,points,granted_on"]
    lines += [f"JW{n:015d},{n:016x},1980-04-01,5000,2022-10-24" for n in range(1, count + 1)]
    return ("\ufeff" + "\n".join(lines) + "\n").encode()


def run(count: int) -> tuple[float, dict[str, int]]:
    serialize_dynamodb()
    with mock_aws():
        table = Table.from_settings()  # the table the models are bound to (the settings')
        table.create()
        store = CardStore(table)
        store.put_issuer(Issuer(ISSUER))
        now = datetime(2022, 11, 1, 1, 0, tzinfo=timezone.utc)
        ledger = Ledger(store, clock=lambda: now, extra_writes=ledger_aggregates)
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (IMPORTS, REPORTS):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        terminals = TerminalService(ledger, TerminalStore(table), rebates=Rebates.on_table(table))
        importer = Importer(ledger, terminals, RunStore(table), ImportFiles(s3, IMPORTS, REPORTS))
        key = f"{ISSUER}/cards/bench.csv"
        s3.put_object(Bucket=IMPORTS, Key=key, Body=cards_file(count))
        ledger.issuer(ISSUER)  # warm: read once per container

        calls: dict[str, int] = {}

        def count_call(model, **_):
            calls[model.name] = calls.get(model.name, 0) + 1

        events = store.connection.client.meta.events
        events.register("before-call.dynamodb", count_call, unique_id="bench-imports-count")
        gc.collect()
        started = time.perf_counter()
        try:
            report = importer.handle_s3_object(IMPORTS, key)
        finally:
            elapsed = time.perf_counter() - started
            events.unregister("before-call.dynamodb", unique_id="bench-imports-count")
        if not report.complete or report.tally.imported != count or report.tally.points != count * 5000:
            raise RuntimeError(f"the import did not open and grant every card once: {report.tally}")
        sample = ledger.balance(f"{count:016x}", on=date(2022, 11, 1))
        if sample.balance != 5000:
            raise RuntimeError("the last card's balance is wrong")
        return elapsed, calls


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    count = 500 if quick else 2_000
    logger().setLevel(logging.WARNING)  # the progress lines would swamp the figures
    seconds, calls = run(count)
    rate = count / seconds
    projected = TARGET / rate
    per_row = sum(calls.values()) / count
    ops = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
    print(f"Card import, {count:,} cards (moto, in-process):")
    print(f"  {seconds:7.2f} s  {rate:7.1f} rows/s  {seconds / count * 1e3:6.2f} ms/row  "
          f"{per_row:.2f} DynamoDB calls/row  ({ops})")
    print(f"  projected for {TARGET:,} cards: {projected:,.0f} s = {projected / LAMBDA_SECONDS:.2f} Lambda invocations "
          f"of {LAMBDA_SECONDS} s (a longer import goes on in the next invocation from its checkpoint)")
    figures = {"rows_per_second": round(rate, 1), "projected_seconds_30000": round(projected, 1),
               "dynamodb_calls_per_row": round(per_row, 3)}
    over = per_row > BUDGET_CALLS
    print(f"  budget: DynamoDB calls/row <= {BUDGET_CALLS}" + ("  (quick mode)" if quick else ""))
    if over:
        print("OVER BUDGET: dynamodb_calls_per_row")
    print(json.dumps(figures))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
