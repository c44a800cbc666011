"""CSV imports (§10): issued cards, merchants, terminals, events, admin grants and the
e-money acquirer's settlement files (§6.2), from a file dropped in S3 or sent to the
admin API.

Every row is validated (domain.parse) and then applied on its own: a refused row is
reported in the result file with why, and the others go on. Exactly once, whatever
happens:

- a card's initial grant has the request id `import:<issuer>:initial:<idm>`, and the
  ledger allows one initial grant per card whatever its request id (the claim
  `INITIAL#<idm>`): a re-import, a resumed run, another file with the same card, or a
  card granted its initial points by another path (the demo loader, a script) never
  grants twice (the same points and date are "unchanged"; another amount or date is
  rejected and says what the card got);
- an admin grant is the operators' `grant_once` (operators/grants.py), the one the admin API's grant
  lists call (request id `admin:<issuer>:<list>:<idm>`), so a list imported here and sent
  to the admin API's grant list grants once, and a row the list granted before is
  "unchanged" here as it is "already granted" there;
- an e-money settlement line (`emoney-settlements`) matches the record of its card and
  sequence number once (chalicelib/reconciliation/): the record keeps the line's id, so
  the line imported again is "unchanged"; a line that matches nothing is "unmatched",
  listed in the result file and kept for the reconciliation report, not an error. When a
  settlement file has gone through every row, the months its lines fall in are received
  (the rebate for them may be granted); that is done before the run is marked finished,
  so a run killed in between marks them on its retry;
- merchants, terminals and events are created, never changed, by an import: a row that
  matches what is registered is "unchanged", one that differs is rejected (changes and
  key rotation go through the admin API, which has a rule for each). So a re-import
  never re-activates a terminal an operator disabled.

A long file is imported in chunks. The run (one S3 object version, or one API call)
keeps its cursor in the table (store.RunStore) and checkpoints every
`checkpoint_every` rows; when the invocation's deadline comes, it checkpoints and
puts a continuation marker in the imports bucket, whose notification starts the next
invocation at the cursor. Rows before the cursor are never redone; a row redone after
a crash between checkpoints is harmless because every change is exactly once.

Logs carry counts, rates, the run id, issuer, kind and S3 key, never a row's content
(card numbers, IDm, birth dates) nor a rejection's reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Protocol
from zoneinfo import ZoneInfo

from ..errors import Busy, ChiikiError
from ..ledger.domain import Actor, Issuer, Source, expiry_date
from ..ledger.errors import CardAlreadyExists
from ..ledger.service import Ledger, UnknownIssuer
from ..observability import logger
from ..operators.service import GrantOutcome, grant_once
from ..reconciliation.domain import SettlementLine
from ..reconciliation.service import Reconciliation
from ..terminals.domain import Event, Merchant, Mode, Terminal
from ..terminals.service import TerminalService
from . import keys
from .domain import (
    AdminGrantRow,
    CardRow,
    EventRow,
    Kind,
    MerchantRow,
    Outcome,
    ParsedFile,
    Rejection,
    Row,
    RunState,
    Status,
    Tally,
    TerminalRow,
    content_sha,
    parse,
    result_csv,
    run_id,
)
from .errors import FileRefused, RunSuperseded, TooLargeForApi
from .store import ImportFiles, MemoryRunStore

API_ROW_LIMIT = 1_000  # the admin API answers within API Gateway's 29 s; larger files go through S3
API_SECONDS = 20.0


def initial_request_id(issuer_id: str, idm: str) -> str:
    """One initial grant per card, whichever file or run brings it."""
    return f"import:{issuer_id}:initial:{idm}"


class Runs(Protocol):
    def load(self, run_id: str) -> RunState | None: ...
    def checkpoint(self, run_id: str, source: str, before: RunState, after: RunState,
                   rejections: list[Rejection]) -> None: ...
    def rejections(self, run_id: str) -> list[Rejection]: ...


@dataclass(frozen=True)
class Applied:
    outcome: Outcome
    reason: str | None = None
    points: int = 0


@dataclass(frozen=True)
class RunContext:
    issuer: Issuer
    today: date
    actor: Actor


Applier = Callable[[object, RunContext], Applied]


@dataclass
class ImportReport:
    run_id: str
    source: str
    kind: str
    complete: bool
    tally: Tally
    rows_total: int
    result_csv: bytes
    rejections: list[Rejection] = field(default_factory=list)
    refused: str | None = None
    result_key: str | None = None
    continued_by: str | None = None  # the continuation marker's key
    superseded: bool = False

    def as_dict(self) -> dict:
        """For the admin API: the summary and each rejection (row and reason)."""
        return {
            "source": self.source,
            "kind": self.kind,
            "complete": self.complete,
            "refused": self.refused,
            "rows_total": self.rows_total,
            **self.tally.as_dict(),
            "rejections": [{"row": r.row, "reason": r.reason} for r in self.rejections],
        }


def _rejected(reason: str) -> Applied:
    return Applied(Outcome.REJECTED, reason)


# An admin grant's outcome in the import's words (the result file's columns).
_GRANT_OUTCOMES = {
    GrantOutcome.GRANTED: Outcome.IMPORTED,
    GrantOutcome.ALREADY_GRANTED: Outcome.UNCHANGED,
    GrantOutcome.REFUSED: Outcome.REJECTED,
}


class Importer:
    def __init__(
        self,
        ledger: Ledger,
        terminals: TerminalService,
        runs: Runs,
        files: ImportFiles | None = None,
        *,
        reconciliation: Reconciliation | None = None,
        appliers: Mapping[Kind, Applier] | None = None,
        now: Callable[[], float] = time.monotonic,
        checkpoint_every: int = 100,
        progress_every: int = 1_000,
    ) -> None:
        self.ledger = ledger
        self.terminals = terminals
        self.reconciliation = reconciliation  # for the settlement files (services.py passes it)
        self.runs = runs
        self.files = files
        # `now` is read once before each row, against the deadline (tests stop a run
        # after k rows with a clock that ticks once per row).
        self.now = now
        self.checkpoint_every = checkpoint_every
        self.progress_every = progress_every
        self.appliers: dict[Kind, Applier] = {
            Kind.CARDS: self._card,
            Kind.MERCHANTS: self._merchant,
            Kind.TERMINALS: self._terminal,
            Kind.EVENTS: self._event,
            Kind.ADMIN_GRANTS: self._admin_grant,
            Kind.EMONEY_SETTLEMENTS: self._settlement,
            **(appliers or {}),
        }

    # -- entry points ------------------------------------------------------------------

    def handle_s3_object(self, bucket: str, key: str, *, deadline: float | None = None) -> ImportReport | None:
        """Import a dropped file, or go on with one (a continuation marker's key), until
        `deadline` (a time.monotonic() value; None: no limit). Writes the result file
        (in progress or complete) to the reports bucket. Returns None for a marker
        whose file was replaced meanwhile (the new version is imported on its own)."""
        assert self.files is not None, "an S3 import needs ImportFiles"
        expected: dict | None = None
        if keys.is_continuation(key):
            expected = self.files.read_marker(bucket, key)
            dropped = self.files.read(expected["bucket"], expected["key"], expected["version"])
        else:
            dropped = self.files.read(bucket, key)
        sha = content_sha(dropped.body)
        if expected is not None and (sha, dropped.version) != (expected["sha256"], expected["version"]):
            logger().warning("import continuation skipped: the file was replaced", extra={"key": dropped.key})
            return None
        rid = run_id("s3", dropped.bucket, dropped.key, dropped.version, sha)
        try:
            issuer_id, kind = keys.source(dropped.key)
            issuer = self._issuer(issuer_id)
            parsed = parse(kind, dropped.body, time_zone=ZoneInfo(issuer.time_zone))
        except FileRefused as exc:
            report = self._refused(rid, dropped.key, str(exc))
            report.result_key = self.files.write_result(dropped.key, report.result_csv)
            return report
        actor = Actor("operator", f"import:s3://{dropped.bucket}/{dropped.key}")
        report = self._run(
            rid, dropped.key, parsed, issuer, actor, deadline, self.runs,
            continue_later=lambda index: self.files.continue_later(rid, index, dropped, sha),
        )
        if not report.superseded:
            report.result_key = self.files.write_result(dropped.key, report.result_csv)
        return report

    def import_body(
        self, issuer_id: str, kind_name: str, body: bytes, *, actor: Actor, deadline: float | None = None
    ) -> ImportReport:
        """Import a file sent to the admin API and answer with the result. Raises
        FileRefused (or UnknownKind, TooLargeForApi) for a file that cannot be imported,
        UnknownIssuer for no such issuer. At most API_ROW_LIMIT rows; if the deadline
        comes first the report is not complete, and sending the same file again
        finishes it (the rows already done are reported unchanged)."""
        kind = Kind.named(kind_name)
        issuer = self.ledger.issuer(issuer_id)
        parsed = parse(kind, body, time_zone=ZoneInfo(issuer.time_zone))
        rows = sum(1 for r in parsed.rows if not r.blank)
        if rows > API_ROW_LIMIT:
            raise TooLargeForApi(rows, API_ROW_LIMIT)
        rid = run_id("api", issuer_id, kind.value, content_sha(body), uuid.uuid4().hex)
        if deadline is None:
            deadline = self.now() + API_SECONDS
        return self._run(rid, f"admin API ({kind.value})", parsed, issuer, actor, deadline, MemoryRunStore())

    # -- the run loop ------------------------------------------------------------------

    def _run(
        self,
        rid: str,
        source: str,
        parsed: ParsedFile,
        issuer: Issuer,
        actor: Actor,
        deadline: float | None,
        runs: Runs,
        continue_later: Callable[[int], str] | None = None,
    ) -> ImportReport:
        rows = parsed.rows
        state = runs.load(rid) or RunState()
        log = {"run": rid[:12], "issuer": issuer.issuer_id, "kind": parsed.kind.value, "source": source}
        if state.status is Status.DONE:
            logger().info("import already finished", extra=log)
            return self._report(rid, source, parsed, state, runs, complete=True)
        ctx = RunContext(issuer, self.ledger.today(issuer.issuer_id), actor)
        apply = self.appliers[parsed.kind]
        started, started_index = time.perf_counter(), state.next_index
        logger().info("import chunk started", extra={**log, "rows_total": len(rows), "next_row": state.next_index})

        interval_start, tally, rejections = state, state.tally, []
        index, last_logged = state.next_index, state.next_index
        try:
            while index < len(rows):
                # The clock is read once per row. At least one row per invocation, so a
                # chain of chunks always moves on.
                if deadline is not None and self.now() >= deadline and index > started_index:
                    break
                row = rows[index]
                applied = self._apply(apply, row, ctx)
                tally = tally.add(applied.outcome, applied.points)
                if applied.outcome in (Outcome.REJECTED, Outcome.UNMATCHED):
                    rejections.append(Rejection(row.number, applied.reason or "rejected", row.cells))
                index += 1
                if index - interval_start.next_index >= self.checkpoint_every and index < len(rows):
                    after = RunState(index, tally)
                    runs.checkpoint(rid, source, interval_start, after, rejections)
                    interval_start, rejections = after, []
                    if index - last_logged >= self.progress_every:
                        last_logged = index
                        self._progress(log, index, len(rows), started_index, started)
            done = index >= len(rows)
            if done and parsed.kind is Kind.EMONEY_SETTLEMENTS:
                self._settlement_file_done(parsed, ctx, source)
            after = RunState(index, tally, Status.DONE if done else Status.RUNNING)
            runs.checkpoint(rid, source, interval_start, after, rejections)
        except RunSuperseded:
            logger().warning("import chunk superseded by another invocation", extra={**log, "next_row": index})
            return ImportReport(rid, source, parsed.kind.value, False, tally, len(rows), b"", superseded=True)
        self._progress(log, index, len(rows), started_index, started, ended=True)
        report = self._report(rid, source, parsed, after, runs, complete=done)
        if done:
            logger().info("import finished", extra={**log, **after.tally.as_dict()})
        elif continue_later is not None:
            report.continued_by = continue_later(index)
        return report

    def _apply(self, apply: Applier, row: Row, ctx: RunContext) -> Applied:
        if row.blank:
            return Applied(Outcome.BLANK)
        if row.problem is not None:
            return _rejected(row.problem)
        try:
            return apply(row.record, ctx)
        except Busy:
            raise  # not the row's fault: the invocation fails and is retried from the checkpoint
        except ChiikiError as exc:  # any context's refusal: the ledger's, the terminals', the campaigns'
            return _rejected(str(exc))

    def _progress(self, log: dict, index: int, total: int, started_index: int, started: float, *,
                  ended: bool = False) -> None:
        elapsed = time.perf_counter() - started
        done = index - started_index
        logger().info(
            "import chunk ended" if ended else "import progress",
            extra={**log, "rows_done": index, "rows_total": total, "rows_this_chunk": done,
                   "seconds": round(elapsed, 3), "rows_per_second": round(done / elapsed, 1) if elapsed > 0 else None},
        )

    def _report(self, rid: str, source: str, parsed: ParsedFile, state: RunState, runs: Runs, *,
                complete: bool) -> ImportReport:
        rejections = runs.rejections(rid)
        body = result_csv(source=source, kind=parsed.kind.value, tally=state.tally, rejections=rejections,
                          header=parsed.header, complete=complete, rows_total=len(parsed.rows))
        return ImportReport(rid, source, parsed.kind.value, complete, state.tally, len(parsed.rows), body, rejections)

    def _refused(self, rid: str, source: str, reason: str) -> ImportReport:
        logger().warning("import refused", extra={"run": rid[:12], "source": source})
        parts = source.split("/")
        kind_name = parts[1] if len(parts) > 2 else ""
        body = result_csv(source=source, kind=kind_name, tally=Tally(), rejections=[], refused=reason)
        return ImportReport(rid, source, kind_name, False, Tally(), 0, body, refused=reason)

    def _issuer(self, issuer_id: str) -> Issuer:
        try:
            return self.ledger.issuer(issuer_id)
        except UnknownIssuer as exc:
            raise FileRefused(f"no issuer {issuer_id!r}: the key's first part names the issuer") from exc

    # -- one applier per kind ----------------------------------------------------------

    def _card(self, row: CardRow, ctx: RunContext) -> Applied:
        issuer_id = ctx.issuer.issuer_id
        request_id = initial_request_id(issuer_id, row.idm)
        expires = expiry_date(row.granted_on, ctx.issuer.validity_months)
        if expires < ctx.today:
            # Refused before the card is opened; a re-import of an old file is still "unchanged".
            done = self._initial_grant_done(row, request_id)
            return done or _rejected(f"an initial grant on {row.granted_on} would already have expired ({expires})")
        opened = True
        try:
            self.ledger.open_card(idm=row.idm, card_number=row.card_number, issuer_id=issuer_id,
                                  birth_date=row.birth_date.isoformat())
        except CardAlreadyExists:
            opened = False
            problem = self._not_the_same_card(row, issuer_id)
            if problem:
                return _rejected(problem)
        if not opened:
            done = self._initial_grant_done(row, request_id)
            if done is not None:
                return done
        result = self.ledger.grant(row.idm, row.points, request_id=request_id, actor=ctx.actor, source=Source.INITIAL,
                                   granted_on=row.granted_on, issuer_id=issuer_id)
        return Applied(Outcome.IMPORTED, points=result["granted"])

    def _initial_grant_done(self, row: CardRow, request_id: str) -> Applied | None:
        """The outcome when the card already had its initial grant, by this import's
        request id or any other (None when not)."""
        done = self.ledger.request_record(self.ledger.request_key(request_id))
        if done is None:
            other = self.ledger.initial_grant_entry(row.idm)
            if other is None:
                return None
            done = self.ledger.request_record(other)
            if done is None:  # the claim is there, its request record is not: say so, change nothing
                return _rejected("the card already had its initial grant; nothing was changed")
        granted, valid_from = done.result.get("granted"), done.result.get("valid_from")
        if (granted, valid_from) == (row.points, row.granted_on.isoformat()):
            return Applied(Outcome.UNCHANGED)
        return _rejected(f"the card already had its initial grant ({granted} points from {valid_from}); "
                         "nothing was changed")

    def _not_the_same_card(self, row: CardRow, issuer_id: str) -> str | None:
        """Why an existing card is not this row's card (None when it is: a re-import)."""
        idm = self.ledger.idm_for_number(row.card_number)
        if idm is None:
            return "the IDm is already registered with another card number"
        if idm != row.idm:
            return "the card number is already registered with another IDm"
        stored = self.ledger.card_record(idm)
        if stored is None or stored.card.issuer != issuer_id:
            return "the card belongs to another issuer"
        if stored.birth_date != row.birth_date.isoformat():
            return "the card was imported before with another birth date; correct it through the admin API"
        return None

    def _merchant(self, row: MerchantRow, ctx: RunContext) -> Applied:
        merchant = Merchant(row.merchant_id, ctx.issuer.issuer_id, row.name, row.area, row.category, row.rebate_bps)
        existing = self.terminals.store.get_merchant(merchant.issuer, merchant.merchant_id)
        if existing is not None:
            if existing == merchant:
                return Applied(Outcome.UNCHANGED)
            differ = [f for f in ("name", "area", "category", "rebate_bps")
                      if getattr(existing, f) != getattr(merchant, f)]
            return _rejected(f"merchant {row.merchant_id} already exists with another {', '.join(differ)}; "
                             "change it through the admin API")
        self.terminals.register_merchant(merchant)
        return Applied(Outcome.IMPORTED)

    def _terminal(self, row: TerminalRow, ctx: RunContext) -> Applied:
        issuer_id = ctx.issuer.issuer_id
        terminal = Terminal(row.terminal_id, issuer_id, row.mode, row.public_key,
                            merchant_id=row.merchant_id, event_id=row.event_id)
        existing = self.terminals.store.get_terminal(row.terminal_id)
        if existing is not None:
            if existing.issuer != issuer_id:
                return _rejected(f"terminal id {row.terminal_id} belongs to another issuer")
            same = replace(existing, status=terminal.status, public_key=existing.public_key.strip() + "\n")
            if same == terminal:
                return Applied(Outcome.UNCHANGED)  # whatever its status: a disabled terminal stays disabled
            return _rejected(f"terminal {row.terminal_id} is already registered with another key, mode, merchant "
                             "or event; rotate keys through the admin API")
        if row.mode is Mode.EVENT:
            event = self.terminals.store.get_event(row.event_id)
            if event is None or event.issuer != issuer_id:
                return _rejected(f"no event {row.event_id} of this issuer (import the events first)")
        if row.merchant_id is not None and self.terminals.store.get_merchant(issuer_id, row.merchant_id) is None:
            return _rejected(f"no merchant {row.merchant_id} of this issuer (import the merchants first)")
        self.terminals.register_terminal(terminal)  # InvalidRequest (a bad key) becomes the row's reason
        return Applied(Outcome.IMPORTED)

    def _event(self, row: EventRow, ctx: RunContext) -> Applied:
        event = Event(row.event_id, ctx.issuer.issuer_id, row.name, row.points, row.opens_at, row.closes_at,
                      row.validity_months)
        existing = self.terminals.store.get_event(row.event_id)
        if existing is not None:
            if existing.issuer != event.issuer:
                return _rejected(f"event id {row.event_id} belongs to another issuer")
            if existing == event:
                return Applied(Outcome.UNCHANGED)
            return _rejected(f"event {row.event_id} already exists with other details; "
                             "change it through the admin API")
        self.terminals.register_event(event)
        return Applied(Outcome.IMPORTED)

    def _settlement(self, row: SettlementLine, ctx: RunContext) -> Applied:
        result = self._reconciliation().match(ctx.issuer, row, ctx.today)
        if not result.matched:
            return Applied(Outcome.UNMATCHED, result.reason)
        return Applied(Outcome.UNCHANGED if result.already else Outcome.IMPORTED)

    def _settlement_file_done(self, parsed: ParsedFile, ctx: RunContext, source: str) -> None:
        lines = [row.record for row in parsed.rows if isinstance(row.record, SettlementLine)]
        months = self._reconciliation().file_received(ctx.issuer, lines, ctx.today, source)
        if months:
            logger().info("settlement file received", extra={"issuer": ctx.issuer.issuer_id, "months": months,
                                                             "source": source})

    def _reconciliation(self) -> Reconciliation:
        if self.reconciliation is None:
            raise RuntimeError("this importer was built without reconciliation: it cannot import settlement files")
        return self.reconciliation

    def _admin_grant(self, row: AdminGrantRow, ctx: RunContext) -> Applied:
        grant = grant_once(self.ledger, ctx.issuer.issuer_id, row.list_id, row.card_number, row.points,
                           reason=row.reason, actor=ctx.actor)
        return Applied(_GRANT_OUTCOMES[grant.outcome], grant.reason, grant.points)
