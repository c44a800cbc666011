"""Fan-out jobs: how much faster the job runner does a job's work with 8 workers than
with 1, in-process against moto with DynamoDB's latency put back.

Budget (issue 14, item 6): each job at least 6x faster with 8 workers than with 1.

moto answers a call in well under a millisecond of this process's time; DynamoDB takes
a few milliseconds of network and service time, during which a Lambda waits. So every
DynamoDB call here first waits LATENCY_S (botocore's before-call event: outside moto and
its lock, localdev/moto_serial.py, so workers' waits overlap as Lambdas' would). The
jobs queue is moto's SQS, with no latency added (a few calls per piece, not per card).

What this cannot remove is moto's own work: every call costs this process a few
milliseconds of CPU inside moto (DynamoDB's servers do that work, not the Lambda), and
the eight workers, threads of one process, take turns for it (the GIL, and moto's lock).
So the speedup here is capped near (CPU per call + LATENCY_S) / CPU per call whatever
the runner does; the script prints this process's CPU time per call (from the 1-worker
run, mostly moto's) and that cap beside each speedup. Threads also hand the GIL over only every
switch interval (5 ms by default), which would make a worker back from its wait queue
behind a busy one: the interval is set to 0.2 ms, as eight Lambdas never wait for each
other at all.

Each job runs over CARDS cards (the expiry: each with a lot due on one day; the rebate:
each paid by e-money in one month, written as bench/jobs.py writes them), the issuer
split into `job_pieces` = every shard, twice in fresh mocks: once drained by 1 worker,
once by 8 (threads of this process, the workers Lambda would run at once). Same cards,
same pieces, same calls; the ratio of the two times is the speedup.

    python bench/fanout.py            # 4,000 cards
    python bench/fanout.py --quick    # or BENCH_QUICK=1: 2,000 cards

Prints its figures, then as the last line one JSON object. Exits 1 when under budget.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localdev.fake_aws import use_fake_aws  # noqa: E402

use_fake_aws(in_process=True)  # before anything builds an AWS client

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib import observability  # noqa: E402
from chalicelib.job_progress import JobState  # noqa: E402
from chalicelib.jobs.expiry import JOB as EXPIRY_JOB  # noqa: E402
from chalicelib.jobs.expiry import ExpiryJob  # noqa: E402
from chalicelib.jobs.rebate import JOB as REBATE_JOB  # noqa: E402
from chalicelib.jobs.rebate import RebateJob  # noqa: E402
from chalicelib.jobs.runner import Runner, SqsQueue  # noqa: E402
from chalicelib.ledger import keys  # noqa: E402
from chalicelib.ledger.domain import Issuer  # noqa: E402
from chalicelib.ledger.service import Ledger  # noqa: E402
from chalicelib.ledger.store import CardStore  # noqa: E402
from chalicelib.rebates.service import Rebates  # noqa: E402
from chalicelib.reconciliation.service import Reconciliation  # noqa: E402
from chalicelib.reconciliation.store import ReconciliationStore  # noqa: E402
from chalicelib.reports.store import ledger_aggregates  # noqa: E402
from chalicelib.table import Table  # noqa: E402
from localdev.moto_serial import serialize_dynamodb  # noqa: E402

sys.setswitchinterval(0.0002)  # see above: separate Lambdas never queue for one interpreter
observability.logger().setLevel("WARNING")  # a line per run and piece would bury the figures

_spec = importlib.util.spec_from_file_location("bench_jobs", ROOT / "bench" / "jobs.py")
setup = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = setup  # dataclasses look their module up while the file runs
_spec.loader.exec_module(setup)  # the cards and accruals, written as bench/jobs.py writes them

REGION = "ap-northeast-1"
ISSUER = setup.ISSUER
LATENCY_S = float(os.environ.get("BENCH_LATENCY_MS") or 5) / 1000  # per DynamoDB call: the issue's 5-10 ms
WORKERS = 8
BUDGET_SPEEDUP = 6.0


@dataclass
class Run:
    job: str
    workers: int
    cards: int
    seconds: float
    calls: int
    cpu_seconds: float  # this process's CPU time (moto's work, botocore's, the jobs')


def run_once(job: str, count: int, workers: int) -> Run:
    serialize_dynamodb()
    with mock_aws():
        table = Table.from_settings()
        table.create()
        store = CardStore(table)
        store.put_issuer(Issuer(ISSUER, job_pieces=keys.SHARDS))  # a day in as many pieces as shards
        idms = setup.write_cards(count)
        state = JobState()
        if job == REBATE_JOB:
            setup.write_accruals(idms)
            state.mark_done(REBATE_JOB, ISSUER, date(2022, 9, 1))
            on, since = setup.REBATE_DAY, None
            ledger = Ledger(store, clock=setup.clock_at(on), extra_writes=ledger_aggregates)
            reconciliation = Reconciliation(ledger, ReconciliationStore())
            jobs = {REBATE_JOB: lambda: RebateJob(ledger, Rebates.on_table(table), state, reconciliation)}
        else:
            on, since = setup.RUN_DAY, setup.DUE
            ledger = Ledger(store, clock=setup.clock_at(on), extra_writes=ledger_aggregates)
            jobs = {EXPIRY_JOB: lambda: ExpiryJob(ledger, state)}
        ledger.issuer(ISSUER)  # warm: read once per container
        queue = SqsQueue(boto3.client("sqs", region_name=REGION), None, "bench-jobs", create=True)
        runner = Runner(jobs, queue, state, pieces=lambda issuer: ledger.issuer(issuer).job_pieces)

        calls = [0]

        def wait(**_) -> None:  # DynamoDB's round trip, outside moto's lock
            calls[0] += 1
            time.sleep(LATENCY_S)

        events = store.connection.client.meta.events
        events.register("before-call.dynamodb", wait, unique_id="bench-fanout-latency")
        gc.collect()
        gc.freeze()  # moto's tables are this process's heap, not a Lambda's: see bench/jobs.py
        started, cpu = time.perf_counter(), time.process_time()
        try:
            report = runner.run_here(job, ISSUER, on, since, workers=workers)
        finally:
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            gc.unfreeze()
            events.unregister("before-call.dynamodb", unique_id="bench-fanout-latency")
        if report.cards != count:
            raise RuntimeError(f"the {job} job did not reach every card once: {report}")
        return Run(job, workers, count, elapsed, calls[0], cpu)


def speedups(count: int) -> dict[str, float]:
    figures = {}
    for job, title in ((EXPIRY_JOB, "Daily expiry, every card with one lot due"),
                       (REBATE_JOB, "Monthly rebate, every card paid in the month")):
        one, many = run_once(job, count, 1), run_once(job, count, WORKERS)
        print(f"{title} ({count:,} cards, {keys.SHARDS} pieces, {LATENCY_S * 1e3:.0f} ms per DynamoDB call):")
        for r in (one, many):
            print(f"  {r.workers} worker{'s' if r.workers > 1 else ' '}  {r.seconds:7.2f} s  "
                  f"{r.calls / r.cards:.2f} calls/card")
        ratio = one.seconds / many.seconds
        cpu_s = max(one.cpu_seconds / one.calls, 1e-6)
        cap = min(WORKERS, (cpu_s + LATENCY_S) / cpu_s)
        print(f"  {WORKERS} workers: {ratio:.2f}x faster ({cpu_s * 1e3:.2f} ms of this process's CPU per call, "
              f"mostly moto's: at most {cap:.2f}x for threads of one process)")
        figures[f"{job}_speedup_{WORKERS}"] = round(ratio, 2)
    return figures


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    figures = speedups(2_000 if quick else 4_000)
    over = [name for name, value in figures.items() if value < BUDGET_SPEEDUP]
    print(f"  budget: speedup with {WORKERS} workers >= {BUDGET_SPEEDUP}" + ("  (quick mode)" if quick else ""))
    if over:
        print("UNDER BUDGET: " + ", ".join(over))
    print(json.dumps(figures))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
