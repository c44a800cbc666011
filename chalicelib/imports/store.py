"""The imports' items in the application table, and their S3 objects.

    IMPORT#<run>   STATE               the run's cursor (next row index), counts, status
    IMPORT#<run>   REJECTED#<index>    the rows one checkpoint interval rejected (JSON)

A checkpoint is one TransactWriteItems: the state put under the condition that its
cursor is still where this invocation started the interval, and the interval's
rejections. So an interval is recorded whole or not at all, and of two invocations
working on one run (S3 delivers an event twice now and then) only one moves on; the
other stops. Both items expire (TTL) 30 days after they were written: the result file
in S3 is the record, and rejected rows hold personal data (birth dates).

`MemoryRunStore` is the same contract in memory: for the admin API's short imports,
which answer in the response, and for tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..table import Refused, Table, TableItem, Transaction
from . import keys
from .domain import Rejection, RunState, Status, Tally
from .errors import RunSuperseded

KEEP = timedelta(days=30)


class ImportRunItem(TableItem, discriminator="import_run"):
    next_index = NumberAttribute()
    status = UnicodeAttribute()
    tally = UnicodeAttribute()  # JSON of domain.Tally
    source = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class ImportRejectedItem(TableItem, discriminator="import_rejected"):
    rows = UnicodeAttribute()  # JSON: [[row, reason, [cells…]], …]


def _state(item: ImportRunItem) -> RunState:
    return RunState(int(item.next_index), Tally(**json.loads(item.tally)), Status(item.status))


class RunStore:
    """Runs in DynamoDB: what lets an import stop and go on in another invocation."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def load(self, run_id: str) -> RunState | None:
        try:
            item = ImportRunItem.get(*keys.run_state(run_id), consistent_read=True)
        except ImportRunItem.DoesNotExist:
            return None
        return _state(item)

    def checkpoint(
        self, run_id: str, source: str, before: RunState, after: RunState, rejections: Sequence[Rejection]
    ) -> None:
        """Move the run from `before` to `after` with the interval's rejections. Raises
        RunSuperseded when another invocation moved it first."""
        now = datetime.now(timezone.utc)
        state = ImportRunItem(
            *keys.run_state(run_id),
            next_index=after.next_index,
            status=after.status.value,
            tally=json.dumps(after.tally.__dict__),
            source=source,
            updated_at=now.isoformat(),
            expires_at=now + KEEP,
        )
        condition = (
            ImportRunItem.pk.does_not_exist()
            if before.next_index == 0
            else ImportRunItem.next_index == before.next_index
        )
        tx = Transaction(self.table.connection)
        tx.put(state, "state", condition)
        if rejections:
            body = json.dumps([[r.row, r.reason, list(r.cells)] for r in rejections], ensure_ascii=False)
            tx.put(ImportRejectedItem(*keys.run_rejections(run_id, before.next_index), rows=body,
                                      expires_at=now + KEEP), "rejected")
        try:
            tx.commit()
        except Refused as exc:
            raise RunSuperseded(f"run {run_id[:12]} was moved on by another invocation") from exc

    def rejections(self, run_id: str) -> list[Rejection]:
        out = []
        for item in ImportRejectedItem.query(
            keys.run_partition(run_id), ImportRejectedItem.sk.startswith(keys.REJECTED), consistent_read=True
        ):
            out += [Rejection(row, reason, tuple(cells)) for row, reason, cells in json.loads(item.rows)]
        return out


class MemoryRunStore:
    """The same contract as RunStore, in memory (one process)."""

    def __init__(self) -> None:
        self.states: dict[str, RunState] = {}
        self.rejected: dict[str, dict[int, list[Rejection]]] = {}

    def load(self, run_id: str) -> RunState | None:
        return self.states.get(run_id)

    def checkpoint(
        self, run_id: str, source: str, before: RunState, after: RunState, rejections: Sequence[Rejection]
    ) -> None:
        current = self.states.get(run_id)
        if before.next_index == 0:
            ok = current is None
        else:
            ok = current is not None and current.next_index == before.next_index
        if not ok:
            raise RunSuperseded(f"run {run_id[:12]} was moved on by another invocation")
        self.states[run_id] = after
        if rejections:
            self.rejected.setdefault(run_id, {})[before.next_index] = list(rejections)

    def rejections(self, run_id: str) -> list[Rejection]:
        intervals = self.rejected.get(run_id, {})
        return [r for start in sorted(intervals) for r in intervals[start]]


@dataclass(frozen=True)
class DroppedFile:
    bucket: str
    key: str
    body: bytes
    version: str  # the S3 version id, or the last-modified time where versioning is off


class ImportFiles:
    """The S3 side: dropped files, continuation markers and result files."""

    def __init__(self, s3, imports_bucket: str, reports_bucket: str) -> None:
        self.s3 = s3
        self.imports_bucket = imports_bucket
        self.reports_bucket = reports_bucket

    def read(self, bucket: str, key: str, version: str | None = None) -> DroppedFile:
        args = {"Bucket": bucket, "Key": key}
        if version and not version.startswith("modified:"):
            args["VersionId"] = version
        response = self.s3.get_object(**args)
        found = response.get("VersionId")
        if not found or found == "null":
            found = "modified:" + response["LastModified"].astimezone(timezone.utc).isoformat()
        return DroppedFile(bucket, key, response["Body"].read(), found)

    def write_result(self, source_key: str, body: bytes) -> str:
        key = keys.result(source_key)
        self.s3.put_object(Bucket=self.reports_bucket, Key=key, Body=body, ContentType="text/csv; charset=utf-8")
        return key

    def continue_later(self, run_id: str, next_index: int, dropped: DroppedFile, sha: str) -> str:
        """Put the marker whose notification starts the next chunk of this run."""
        key = keys.continuation(run_id, next_index)
        marker = {"bucket": dropped.bucket, "key": dropped.key, "version": dropped.version, "sha256": sha}
        self.s3.put_object(Bucket=self.imports_bucket, Key=key, Body=json.dumps(marker).encode(),
                           ContentType="application/json")
        return key

    def read_marker(self, bucket: str, key: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
