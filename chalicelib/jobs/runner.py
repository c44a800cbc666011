"""The one job runner every fanned-out daily job runs on: a coordinator and workers.

The coordinator (a schedule's function, or an operator's run by hand) asks a job for the
work days of an issuer's run day `on` — from the day after the last one done
(JOB#<job>#<issuer>, chalicelib/job_progress.py), so a missed day is caught up — and
sends one message per piece of the first day to the jobs queue (SQS). A piece is
(job, issuer, run day, work day, part): part p of P takes the day's index shards
p·S/P … (p+1)·S/P − 1. P is the issuer's `job_pieces` setting: 1 for a city (one
worker, no more calls than a serial run), up to every shard for a prefecture.

A worker (the run-job-piece function on that queue, app.py) runs one piece: it lists the
piece's keys shard by shard in key order and hands each to the job, which does its
exactly-once work (ledger request ids, claims: unchanged by the runner). It has a time
budget (the Lambda's remaining time less a margin): when it runs out, the worker sends
the piece again with its cursor (shard, last key done) and stops. Every CHECKPOINT_EVERY
keys it also writes that cursor, so a worker killed outright, whose message SQS offers
again, starts from the checkpoint rather than the piece's start (a redelivered message
reads it; nothing else does).

A work day is done when all its parts are: the day's item (JOBRUN#<job>#<issuer>#<on>
DAY#<day>) collects the parts done; with one part the piece itself is the day. The worker
that finishes a day marks it done (progress only moves forward) and sends the next work
day's pieces, so days are done in order, as the serial loops did, and each fans out.

Locally (moto, `make run`, the tests) the very same coordinator and worker code runs:
`Runner.run_here` coordinates, then drains the queue in this process with one or more
worker threads, as Lambda's event source would. A test stops a run part way with
`Stop(after=n)`: the n-th key done raises JobInterrupted, as a killed Lambda would stop.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import islice
from typing import Any, Protocol

from ..job_progress import JobInterrupted, JobState
from ..observability import logger
from . import store

CHECKPOINT_EVERY = 100  # keys between a piece's checkpoints
MARGIN_S = 30.0  # a worker stops taking keys this long before its Lambda's time runs out
MAX_PIECES = 64  # parts per work day at most (each a worker at once)


class Job(Protocol):
    """What a fanned-out job tells the runner: its days, its keys, its work per key."""

    name: str

    def shards(self, issuer_id: str) -> int: ...

    def days(self, issuer_id: str, on: date, since: date | None) -> list[date]:
        """The work days of run day `on`, in order, consecutive (`since`: force the first)."""

    def keys(self, issuer_id: str, day: date, shard: int, after: str | None) -> Iterable[Any]:
        """The keys of one shard of one work day, ascending, those after `after` only
        (or items whose `cursor(item)` is their key)."""

    def run(self, issuer_id: str, on: date, day: date, key: Any, report: Any, context: Any = None) -> None:
        """The exactly-once work of one key; counts go into `report`. (`context`: what
        the job's `prepare` read for the key's batch, if it has one.)"""

    def report(self, issuer_id: str, on: date) -> Any:
        """An empty report: a dataclass whose int fields add up over pieces, and `days`."""

    def finished(self, report: Any) -> None:
        """The run's log line."""


@dataclass(frozen=True)
class Piece:
    job: str
    issuer: str
    on: date  # the run day
    day: date  # this piece's work day
    last: date  # the run's last work day: a finished day sends the next until this one
    part: int
    parts: int
    after: tuple[int, str] | None = None  # (shard, key) last done: the remainder starts after it

    def body(self) -> str:
        return json.dumps({"job": self.job, "issuer": self.issuer, "on": self.on.isoformat(),
                           "day": self.day.isoformat(), "last": self.last.isoformat(),
                           "part": self.part, "parts": self.parts,
                           "after": list(self.after) if self.after else None}, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> Piece:
        d = json.loads(body)
        after = d.get("after")
        return cls(d["job"], d["issuer"], date.fromisoformat(d["on"]), date.fromisoformat(d["day"]),
                   date.fromisoformat(d["last"]), int(d["part"]), int(d["parts"]),
                   (int(after[0]), str(after[1])) if after else None)

    def shards(self, total: int) -> range:
        return range(self.part * total // self.parts, (self.part + 1) * total // self.parts)


class Stop:
    """A run killed part way, for tests: the `after`-th key done raises JobInterrupted."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.done = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self.done += 1
            if self.done >= self.after:
                raise JobInterrupted(f"stopped after {self.done} keys")


@dataclass
class Budget:
    """How long one piece may run: until `deadline` (time.monotonic), or `keys` keys."""

    deadline: float | None = None
    keys: int | None = None
    done: int = 0

    @classmethod
    def for_lambda(cls, remaining_ms: int | None) -> Budget:
        if remaining_ms is None:
            return cls()
        return cls(deadline=time.monotonic() + max(remaining_ms / 1000.0 - MARGIN_S, 1.0))

    def spend(self) -> bool:
        """One key done; whether the budget is now spent."""
        self.done += 1
        return (self.keys is not None and self.done >= self.keys) or (
            self.deadline is not None and time.monotonic() >= self.deadline)


# --- queues ----------------------------------------------------------------------


@dataclass
class Message:
    handle: str
    body: str
    receives: int = 1


class Queue(Protocol):
    def send(self, bodies: list[str]) -> None: ...
    def receive(self, limit: int) -> list[Message]: ...
    def delete(self, message: Message) -> None: ...


class MemoryQueue:
    """A queue in this process (the benchmark's and unit tests' transport)."""

    def __init__(self) -> None:
        self._items: deque[Message] = deque()
        self._lock = threading.Lock()
        self._n = 0

    def send(self, bodies: list[str]) -> None:
        with self._lock:
            for body in bodies:
                self._n += 1
                self._items.append(Message(str(self._n), body))

    def receive(self, limit: int) -> list[Message]:
        with self._lock:
            return [self._items.popleft() for _ in range(min(limit, len(self._items)))]

    def delete(self, message: Message) -> None:
        pass


class SqsQueue:
    """The jobs queue on SQS (deployed: its URL from infra/; locally: moto's, made on first use)."""

    def __init__(self, client: Any, url: str | None, name: str, create: bool = False) -> None:
        self.client = client
        self.url = url
        self.name = name
        self.create = create

    def _url(self) -> str:
        if self.url is None:
            try:
                self.url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
            except self.client.exceptions.QueueDoesNotExist:
                if not self.create:
                    raise
                self.url = self.client.create_queue(QueueName=self.name)["QueueUrl"]
        return self.url

    def send(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), 10):  # SendMessageBatch takes ten
            batch = bodies[start:start + 10]
            got = self.client.send_message_batch(QueueUrl=self._url(), Entries=[
                {"Id": str(n), "MessageBody": body} for n, body in enumerate(batch)])
            if got.get("Failed"):
                raise RuntimeError(f"{len(got['Failed'])} job pieces not queued")

    def receive(self, limit: int) -> list[Message]:
        got = self.client.receive_message(QueueUrl=self._url(), MaxNumberOfMessages=min(limit, 10),
                                          AttributeNames=["ApproximateReceiveCount"])
        return [Message(m["ReceiptHandle"], m["Body"], int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)))
                for m in got.get("Messages", [])]

    def delete(self, message: Message) -> None:
        self.client.delete_message(QueueUrl=self._url(), ReceiptHandle=message.handle)


# --- the runner ------------------------------------------------------------------


@dataclass
class PieceResult:
    piece: Piece
    report: Any
    day_done: bool = False  # this piece finished its work day (and marked it done)
    requeued: bool = False  # its budget ran out: the remainder was sent again


class Runner:
    def __init__(self, jobs: Mapping[str, Callable[[], Job]], queue: Queue, state: JobState,
                 pieces: Callable[[str], int] = lambda issuer: 1) -> None:
        self.jobs = jobs  # job name -> its Job, built when a piece of it runs
        self.queue = queue
        self.state = state
        self.pieces = pieces  # issuer -> parts per work day (the issuer's setting)

    # -- the coordinator --

    def start(self, name: str, issuer_id: str, on: date, since: date | None = None,
              job: Job | None = None) -> list[date]:
        """Queue the pieces of the run's first work day not done yet; the run's work days."""
        job = job or self.jobs[name]()
        days = job.days(issuer_id, on, since)
        if not days:
            return days
        parts = max(1, min(self.pieces(issuer_id), job.shards(issuer_id), MAX_PIECES))
        self._send_day(job, issuer_id, on, days[0], days[-1], parts)
        return days

    def _send_day(self, job: Job, issuer_id: str, on: date, day: date, last: date, parts: int) -> None:
        while True:
            done = store.parts_done(job.name, issuer_id, on, day) if parts > 1 else set()
            todo = [p for p in range(parts) if p not in done]
            if todo:
                self.queue.send([Piece(job.name, issuer_id, on, day, last, p, parts).body() for p in todo])
                return
            # Every part was done but the day not marked (a worker stopped in between).
            self.state.mark_done(job.name, issuer_id, day)
            if day >= last:
                return
            day = _next(job, day)

    # -- the worker --

    def run_piece(self, piece: Piece, budget: Budget | None = None, stop: Stop | None = None,
                  redelivered: bool = False) -> PieceResult:
        job = self.jobs[piece.job]()
        budget = budget or Budget()
        report = job.report(piece.issuer, piece.on)
        after = piece.after
        if redelivered:  # a worker may have been killed part way: go on from its checkpoint
            after = max(filter(None, [after, store.checkpoint(piece)]), default=None)
        since_checkpoint = 0
        # A job may read what its keys need in batches (`batch`, `prepare`: the rebate reads
        # 100 cards' accounts at once); its keys may be items whose `cursor` is the key.
        batch, prepare = getattr(job, "batch", 1), getattr(job, "prepare", None)
        cursor_of = getattr(job, "cursor", None) or (lambda item: item)

        def listed() -> Iterator[tuple[int, Any]]:
            """(shard, key) of the piece's shards in order, from the cursor on."""
            for shard in piece.shards(job.shards(piece.issuer)):
                if after is not None and shard < after[0]:
                    continue
                start = after[1] if after is not None and shard == after[0] else None
                for item in job.keys(piece.issuer, piece.day, shard, start):
                    yield shard, item

        items = listed()
        while chunk := list(islice(items, batch)):
            context = prepare(piece.issuer, [item for _, item in chunk]) if prepare is not None else None
            for shard, item in chunk:
                job.run(piece.issuer, piece.on, piece.day, item, report, context)
                if stop is not None:
                    stop.tick()
                since_checkpoint += 1
                if budget.spend():
                    self.queue.send([dataclasses.replace(piece, after=(shard, cursor_of(item))).body()])
                    return PieceResult(piece, report, requeued=True)
                if since_checkpoint >= CHECKPOINT_EVERY:
                    store.save_checkpoint(piece, (shard, cursor_of(item)))
                    since_checkpoint = 0
        day_done = piece.parts == 1 or store.part_done(piece)
        if day_done:
            self.state.mark_done(piece.job, piece.issuer, piece.day)
            if piece.day < piece.last:
                self._send_day(job, piece.issuer, piece.on, _next(job, piece.day), piece.last, piece.parts)
        return PieceResult(piece, report, day_done=day_done)

    def handle(self, records: list[dict], remaining_ms: int | None = None) -> list[str]:
        """The run-job-piece function's work (SQS records): the ids of messages that failed."""
        failed = []
        for record in records:
            try:
                receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
                result = self.run_piece(Piece.parse(record["body"]), Budget.for_lambda(remaining_ms),
                                        redelivered=receives > 1)
                self._log(result)
            except Exception as exc:  # noqa: BLE001  (SQS offers it again, then the dead-letter queue)
                failed.append(record["messageId"])
                logger().exception("job piece failed", extra={"message_id": record["messageId"],
                                                              "error": type(exc).__name__})
        return failed

    @staticmethod
    def _log(result: PieceResult) -> None:
        p = result.piece
        logger().info("job piece done", extra={"job": p.job, "issuer": p.issuer, "on": p.on.isoformat(),
                                               "day": p.day.isoformat(), "part": p.part, "parts": p.parts,
                                               "day_done": result.day_done, "requeued": result.requeued})

    # -- in this process: the coordinator, then the workers draining the queue --

    def run_here(self, name: str, issuer_id: str, on: date, since: date | None = None, *, workers: int = 1,
                 budget: Callable[[], Budget] = Budget, stop: Stop | None = None) -> Any:
        """Run one issuer's job to the end here (`make run`, tests, the admin API's run by
        hand, the benchmark): the coordinator, then `workers` threads running pieces off
        the queue until none is left. Returns the job's report, summed over the pieces."""
        job = self.jobs[name]()
        days = self.start(name, issuer_id, on, since, job=job)
        report = job.report(issuer_id, on)  # after `days`: what the job found there (a month waiting)
        if not days:
            job.finished(report)
            return report
        self.drain(workers=workers, budget=budget, stop=stop, into=report, job=job)
        job.finished(report)
        return report

    def drain(self, *, workers: int = 1, budget: Callable[[], Budget] = Budget, stop: Stop | None = None,
              into: Any = None, job: Job | None = None) -> None:
        """Run every piece on the queue, and those they send, with `workers` threads."""
        lock = threading.Lock()
        busy = [0]
        errors: list[BaseException] = []

        def work() -> None:
            while not errors:
                with lock:
                    messages = self.queue.receive(1)
                    if not messages:
                        if busy[0] == 0:
                            return
                    else:
                        busy[0] += 1
                if not messages:
                    time.sleep(0.001)
                    continue
                try:
                    message = messages[0]
                    result = self.run_piece(Piece.parse(message.body), budget(), stop,
                                            redelivered=message.receives > 1)
                    self.queue.delete(message)
                    # Only this run's job counts in its report: a stale piece of another job or
                    # issuer (SQS offering a killed run's message again) is run, not counted.
                    if into is not None and (result.piece.job, result.piece.issuer) == (
                            getattr(job, "name", None), getattr(into, "issuer", None)):
                        with lock:
                            _add(into, result.report)
                            if result.day_done:
                                _day_done(job, into, result.piece.day)
                except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
                    errors.append(exc)
                finally:
                    with lock:
                        busy[0] -= 1

        if workers == 1:
            work()
        else:
            threads = [threading.Thread(target=work, name=f"job-worker-{n}") for n in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]


def _next(job: Job, day: date) -> date:
    """The work day after `day`: the next day, or as the job says (the rebate: the next month)."""
    step = getattr(job, "next_day", None)
    return step(day) if step is not None else day + timedelta(days=1)


def _day_done(job: Job | None, report: Any, day: date) -> None:
    """A work day finished: in the report's `days`, or as the job says (the rebate's months)."""
    record = getattr(job, "day_done", None)
    if record is not None:
        record(report, day)
    else:
        report.days.append(day)


def _add(total: Any, part: Any) -> None:
    """Add a piece's counts into the run's report (every int field)."""
    for f in dataclasses.fields(total):
        value = getattr(part, f.name)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(total, f.name, getattr(total, f.name) + value)
