"""Records waiting for the network, kept in SQLite on the terminal.

An e-money payment or a charge has already happened on the card when the terminal
records it (the certified reader debited or loaded the card): the record must reach the
server eventually, even if the network, the API or the terminal's power fails first. So
a record that could not be sent is written here, durably, before the clerk is told.

- Durable: WAL with `synchronous=FULL`, so a committed `put` survives a power cut.
- In order: `flush` sends the oldest first and stops at the first one that gets no
  answer, so a cancel is never sent before the payment it cancels.
- Exactly once: the server keys a record by the card's transaction sequence number and
  the request id kept in the stored body; a resend after a lost answer is a duplicate
  it recognises, so deleting a row only after its answer is safe.
- One flush at a time: an exclusive lock file (flock) around the whole flush, so two
  flushes (the UI's and a `flush` command) never send a row twice or out of order.
  Holding a SQLite write transaction across the HTTP calls instead would block `put`,
  i.e. the till, for as long as the network is slow.
- Nothing lost: a record the server refuses for good (a 4xx) moves to `rejected` with
  the refusal, for an operator to see; it does not block the records behind it.
- Only what may wait: the queue signs and sends only the requests in `QUEUEABLE`, each
  with exactly its fields. Whatever else is found in the file (a row written by something
  other than this agent, a point payment, a body that is not JSON) is never signed: it
  moves to `rejected` with status 0 and the reason, and the rows behind it are sent. The
  path is checked both by `put` and again before each send, since the SQLite file can be
  written by anything running as the agent's user.

Besides e-money payments, their cancels and charges, the queue holds one more kind of
request: the reversal (a point-payment cancel) of a point payment whose answer was lost.
A point payment itself is never queued: it spends a balance only the server knows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .client import ApiError, Offline

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    rejected_at TEXT NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL
);
"""

API = "/api/terminal/v1"

# The requests that may wait for the network, and the fields (with their JSON types) of
# each body, exactly as `agent.Agent` builds them. Everything else needs an answer from
# the server at the time it is made, so it must never be sent later from here.
QUEUEABLE: dict[str, dict[str, type]] = {
    f"{API}/emoney-payments": {"request_id": str, "idm": str, "amount": int, "paid_at": str, "card_seq": int},
    f"{API}/emoney-payments/cancel": {"request_id": str, "idm": str, "card_seq": int},
    f"{API}/charges": {
        "request_id": str, "idm": str, "amount": int, "kind": str, "charged_at": str, "card_seq": int,
    },
    # the reversal of a point payment whose answer was lost (agent.pay_points)
    f"{API}/point-payments/cancel": {"request_id": str, "idm": str, "payment_request_id": str},
}

# `rejected.status` of a row refused here, on the terminal, without sending it.
NOT_SENT = 0

# Refusals that say nothing about the record itself: the terminal's clock is off. The
# record stays queued (in order) until the clock is right.
KEEP_ON = frozenset({"stale_signature"})

# Refusals that mean the request's purpose is already met. The only point-payment cancels
# queued are reversals of payments whose answer was lost: if the payment never happened
# (spend_not_found) or was cancelled meanwhile, there is nothing left to reverse.
SETTLED_BY = {"/api/terminal/v1/point-payments/cancel": frozenset({"spend_not_found", "already_cancelled"})}


class NotQueueable(ValueError):
    """A request the queue will not keep or send: `code` says why (`path_not_allowed`,
    `unreadable_body`, `bad_fields`)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def check_queueable(path: str, body: object) -> None:
    """Raise NotQueueable unless `path` is in QUEUEABLE and `body` has exactly its fields."""
    fields = QUEUEABLE.get(path)
    if fields is None:
        raise NotQueueable("path_not_allowed", f"{path[:200]!r} is not a request that may be queued offline")
    if not isinstance(body, dict):
        raise NotQueueable("unreadable_body", "the stored body is not a JSON object")
    missing, unknown = sorted(fields.keys() - body.keys()), sorted(body.keys() - fields.keys())
    if missing or unknown:
        raise NotQueueable("bad_fields", f"missing fields {missing}, unknown fields {unknown}"[:500])
    for name, kind in fields.items():
        value = body[name]
        # bool is an int to Python but not to the API
        if isinstance(value, bool) or not isinstance(value, kind):
            raise NotQueueable("bad_fields", f"{name} must be a {kind.__name__}, got {type(value).__name__}")


def _decoded(text: str) -> dict | str:
    """A stored body as JSON, or its text as found when it is not a JSON object."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    return body if isinstance(body, dict) else text


class Poster(Protocol):
    def post(self, path: str, body: dict) -> dict: ...


@dataclass(frozen=True)
class QueuedRequest:
    id: int
    path: str
    body: dict | str  # the stored text when it is not a JSON object (a damaged row)
    created_at: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class RejectedRequest:
    id: int
    path: str
    body: dict | str  # the stored text when it is not a JSON object (a damaged row)
    created_at: str
    attempts: int
    rejected_at: str
    status: int  # the server's HTTP status, or NOT_SENT (0) for a row refused here
    code: str
    message: str


@dataclass(frozen=True)
class FlushReport:
    sent: int
    rejected: int
    remaining: int
    stopped_by: str | None = None  # why rows remain: 'offline', an error code, or 'flush_running'


class OfflineQueue:
    """A durable FIFO of signed-API requests (path + JSON body)."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + ".flush-lock")
        self._clock = clock or (lambda: datetime.now(UTC))
        # The queue holds card IDms: readable by the agent's user only. SQLite gives its
        # -wal and -shm files the database file's mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        # One connection per queue object, shared by threads under a lock; autocommit
        # mode, so every transaction below is an explicit BEGIN IMMEDIATE … COMMIT.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db_lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    def __enter__(self) -> OfflineQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- rows ---------------------------------------------------------------------------

    def put(self, path: str, body: dict, *, failed_with: str | None = None) -> int:
        """Append a request; it is on disk when this returns. Returns its id.
        `failed_with` records the attempt already made before queueing, if any.
        Raises NotQueueable for a request that may not wait (see QUEUEABLE)."""
        check_queueable(path, body)
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO pending (path, body, created_at, attempts, last_error) VALUES (?, ?, ?, ?, ?)",
                (path, text, self._now(), 0 if failed_with is None else 1, failed_with and failed_with[:500]),
            )
            return int(cursor.lastrowid)

    def pending(self) -> list[QueuedRequest]:
        with self._db_lock:
            rows = self._db.execute(
                "SELECT id, path, body, created_at, attempts, last_error FROM pending ORDER BY id"
            ).fetchall()
        return [QueuedRequest(i, p, _decoded(b), c, a, e) for i, p, b, c, a, e in rows]

    def count(self) -> int:
        with self._db_lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()
        return int(n)

    def rejected(self) -> list[RejectedRequest]:
        with self._db_lock:
            rows = self._db.execute(
                "SELECT id, path, body, created_at, attempts, rejected_at, status, code, message "
                "FROM rejected ORDER BY id"
            ).fetchall()
        return [RejectedRequest(r[0], r[1], _decoded(r[2]), *r[3:]) for r in rows]

    def rejected_count(self) -> int:
        with self._db_lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()
        return int(n)

    # -- sending ------------------------------------------------------------------------

    def flush(self, client: Poster) -> FlushReport:
        """Send pending requests oldest first until the queue is empty or one gets no
        answer. Returns at once (sending nothing) while another flush is running."""
        with self._flush_lock() as acquired:
            if not acquired:
                return FlushReport(0, 0, self.count(), "flush_running")
            sent = rejected = 0
            while (row := self._head()) is not None:
                try:
                    check_queueable(row.path, row.body)
                except NotQueueable as exc:
                    # Never signed: set aside so it cannot block the records behind it.
                    self._set_aside(row.id, exc)
                    rejected += 1
                    continue
                try:
                    client.post(row.path, row.body)
                except Offline as exc:
                    self._note_failure(row.id, f"offline: {exc}")
                    return FlushReport(sent, rejected, self.count(), "offline")
                except ApiError as exc:
                    if exc.status >= 500 or exc.code in KEEP_ON:
                        self._note_failure(row.id, f"{exc.status} {exc.code}: {exc.message}")
                        return FlushReport(sent, rejected, self.count(), exc.code)
                    if exc.code in SETTLED_BY.get(row.path, ()):
                        self._delete(row.id)
                        sent += 1
                        continue
                    self._reject(row, exc)
                    rejected += 1
                    continue
                self._delete(row.id)
                sent += 1
            return FlushReport(sent, rejected, 0)

    def _head(self) -> QueuedRequest | None:
        with self._db_lock:
            row = self._db.execute(
                "SELECT id, path, body, created_at, attempts, last_error FROM pending ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        i, p, b, c, a, e = row
        return QueuedRequest(i, p, _decoded(b), c, a, e)

    def _delete(self, row_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM pending WHERE id = ?", (row_id,))

    def _note_failure(self, row_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE pending SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error[:500], row_id)
            )

    def _reject(self, row: QueuedRequest, exc: ApiError) -> None:
        self._move_to_rejected(row.id, attempts=1, status=exc.status, code=exc.code, message=exc.message)

    def _set_aside(self, row_id: int, exc: NotQueueable) -> None:
        self._move_to_rejected(row_id, attempts=0, status=NOT_SENT, code=exc.code, message=exc.reason)

    def _move_to_rejected(self, row_id: int, *, attempts: int, status: int, code: str, message: str) -> None:
        # Moved in one transaction: a crash leaves the row in exactly one of the tables.
        with self._transaction() as db:
            db.execute(
                "INSERT INTO rejected (id, path, body, created_at, attempts, rejected_at, status, code, message) "
                "SELECT id, path, body, created_at, attempts + ?, ?, ?, ?, ? FROM pending WHERE id = ?",
                (attempts, self._now(), status, code, message[:500], row_id),
            )
            db.execute("DELETE FROM pending WHERE id = ?", (row_id,))

    # -- plumbing -----------------------------------------------------------------------

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="seconds")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _flush_lock(self) -> Iterator[bool]:
        # flock belongs to the open file description: a fresh open per flush makes two
        # flushes exclude each other in one process as well as across processes.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
