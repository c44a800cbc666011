"""CSV imports, pure: the six kinds of file, their columns, parsing and validating every
row, and the result file. Nothing here reads a clock, the table or S3.

A file is UTF-8 (with or without the BOM Excel writes), comma separated, its first row a
header. Each column is accepted under its English or its Japanese name (case, spaces,
underscores and full-width letters do not matter); a missing required column or an
unknown one refuses the whole file, so a typo never drops a column silently. Rows are
numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
Blank rows (Excel leaves some at the end) are skipped, not rejected.

Codes, numbers and dates are read after NFKC normalisation, so full-width digits and
letters (ＪＷ１２３…, ５０００) are accepted; names, areas, categories and reasons are kept
exactly as written (only trimmed), so Japanese text is stored as the operator typed it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum

from .. import csv_files
from ..ledger.domain import is_card_number, is_idm
from ..reconciliation.domain import SettlementLine
from ..terminals.domain import Mode
from .errors import FileRefused, UnknownKind

BOM = "\ufeff"
MAX_POINTS = 1_000_000  # per row: more is a typo (an extra zero), not a grant
MAX_VALIDITY_MONTHS = 120
MAX_TEXT = 200
_UTC = timezone.utc


class Kind(StrEnum):
    CARDS = "cards"
    MERCHANTS = "merchants"
    TERMINALS = "terminals"
    EVENTS = "events"
    ADMIN_GRANTS = "admin-grants"
    EMONEY_SETTLEMENTS = "emoney-settlements"  # the e-money acquirer's settlement file (§6.2, §10)

    @classmethod
    def named(cls, name: str) -> Kind:
        try:
            return cls(name.strip().lower().replace("_", "-"))
        except ValueError as exc:
            known = ", ".join(k.value for k in cls)
            raise UnknownKind(f"no import kind {name!r}; the kinds are {known}") from exc


@dataclass(frozen=True)
class Column:
    field: str  # the English header and the record's field
    japanese: str
    required: bool = True


COLUMNS: dict[Kind, tuple[Column, ...]] = {
    Kind.CARDS: (
        Column("card_number", "カード番号"),
        Column("idm", "IDm"),
        Column("birth_date", "生年月日"),
        Column("points", "付与ポイント"),
        Column("granted_on", "付与日"),
    ),
    Kind.MERCHANTS: (
        Column("merchant_id", "加盟店ID"),
        Column("name", "加盟店名"),
        Column("area", "地区"),
        Column("category", "業種"),
        Column("rebate_bps", "還元率(bps)", required=False),
    ),
    Kind.TERMINALS: (
        Column("terminal_id", "端末ID"),
        Column("mode", "モード"),
        Column("merchant_id", "加盟店ID", required=False),
        Column("event_id", "イベントID", required=False),
        Column("public_key", "公開鍵"),
    ),
    Kind.EVENTS: (
        Column("event_id", "イベントID"),
        Column("name", "イベント名"),
        Column("points", "ポイント"),
        Column("opens_at", "開始日時"),
        Column("closes_at", "終了日時"),
        Column("validity_months", "有効月数", required=False),
    ),
    Kind.ADMIN_GRANTS: (
        Column("list_id", "リストID"),
        Column("card_number", "カード番号"),
        Column("points", "ポイント"),
        Column("reason", "理由"),
    ),
    # One line per e-money payment the acquirer settled: the card by its number or its IDm
    # (at least one), the card's own transaction sequence number, the amount, the time
    # and the terminal that took it.
    Kind.EMONEY_SETTLEMENTS: (
        Column("card_number", "カード番号", required=False),
        Column("idm", "IDm", required=False),
        Column("card_seq", "取引通番"),
        Column("amount", "金額"),
        Column("paid_at", "利用日時"),
        Column("terminal_id", "端末ID"),
    ),
}
MAX_SEQ = 65_535  # a FeliCa history record's sequence number is two bytes
MAX_SETTLEMENT_YEN = 1_000_000  # a line above this is a typo; one over the card's 20,000 simply matches nothing

MODE_NAMES = {"store": Mode.STORE, "店舗": Mode.STORE, "charger": Mode.CHARGER, "チャージ": Mode.CHARGER,
              "event": Mode.EVENT, "イベント": Mode.EVENT}


# --- records ---------------------------------------------------------------------


@dataclass(frozen=True)
class CardRow:
    card_number: str
    idm: str
    birth_date: date
    points: int
    granted_on: date


@dataclass(frozen=True)
class MerchantRow:
    merchant_id: str
    name: str
    area: str
    category: str
    rebate_bps: int | None


@dataclass(frozen=True)
class TerminalRow:
    terminal_id: str
    mode: Mode
    merchant_id: str | None
    event_id: str | None
    public_key: str


@dataclass(frozen=True)
class EventRow:
    event_id: str
    name: str
    points: int
    opens_at: datetime
    closes_at: datetime
    validity_months: int | None


@dataclass(frozen=True)
class AdminGrantRow:
    list_id: str
    card_number: str
    points: int
    reason: str


Record = CardRow | MerchantRow | TerminalRow | EventRow | AdminGrantRow | SettlementLine


@dataclass(frozen=True)
class Row:
    """One data row: the cells as written, and either its record or why it is refused."""

    number: int
    cells: tuple[str, ...]
    record: Record | None = None
    problem: str | None = None

    @property
    def blank(self) -> bool:
        return self.record is None and self.problem is None


@dataclass(frozen=True)
class ParsedFile:
    kind: Kind
    header: tuple[str, ...]
    rows: tuple[Row, ...]


class RowProblem(ValueError):
    """Why one row is refused, in plain words for the operator's result file."""


# --- parsing ---------------------------------------------------------------------


def decode(body: bytes) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(
            "the file is not UTF-8 text (Excel: save as 'CSV UTF-8 (comma delimited)', not plain 'CSV')"
        ) from exc
    return text.removeprefix(BOM)


def _header_name(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    return re.sub(r"[\s_\-]", "", folded)


def column_map(kind: Kind, header: Sequence[str]) -> list[str | None]:
    """For each header cell, the field it names (None for an empty trailing cell).
    Refuses a header with a missing required column, an unknown or a repeated one."""
    names = {}
    for column in COLUMNS[kind]:
        names[_header_name(column.field)] = column.field
        names[_header_name(column.japanese)] = column.field
    fields: list[str | None] = []
    unknown = []
    for cell in header:
        if not cell.strip():
            fields.append(None)
            continue
        field = names.get(_header_name(cell))
        if field is None:
            unknown.append(cell.strip())
        fields.append(field)
    expected = ", ".join(f"{c.field} ({c.japanese}){'' if c.required else ' optional'}" for c in COLUMNS[kind])
    if unknown:
        raise FileRefused(f"unknown column(s) {', '.join(unknown)} for a {kind} file; its columns are {expected}")
    seen = [f for f in fields if f]
    repeated = sorted({f for f in seen if seen.count(f) > 1})
    if repeated:
        raise FileRefused(f"column(s) {', '.join(repeated)} appear twice in the header")
    missing = [c.field for c in COLUMNS[kind] if c.required and c.field not in seen]
    if missing:
        raise FileRefused(f"missing column(s) {', '.join(missing)} for a {kind} file; its columns are {expected}")
    return fields


def read_rows(text: str) -> list[list[str]]:
    """The file's rows as the csv module reads them. A cell longer than the module's
    limit (csv.field_size_limit(), 131,072 characters: usually a quote opened and never
    closed, which swallows the rest of the file) refuses the whole file: the rows after
    it cannot be told apart, so none is imported and the result file says why."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    while True:
        try:
            rows.append(next(reader))
        except StopIteration:
            return rows
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise FileRefused(
                    f"a cell that reaches line {reader.line_num} of the file is longer than "
                    f"{csv.field_size_limit():,} characters, so nothing in the file was imported; usually a "
                    "double quote (\") opened in a cell is never closed"
                ) from exc
            raise FileRefused(f"the file cannot be read as CSV near line {reader.line_num}: {exc}") from exc


# C0 and C1 control characters and DEL, and the bidirectional overrides that make text
# show in another order than it is stored: never part of a name, id or reason, and a NUL
# cuts a spreadsheet's cell. Line breaks are allowed only inside a PEM public key.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_KEY_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def control_problem(kind: Kind, values: dict[str, str]) -> str | None:
    """Why a row's cells are refused for a control character (None when they are not)."""
    for column in COLUMNS[kind]:
        value = values.get(column.field, "").strip()
        found = (_KEY_CONTROL if column.field == "public_key" else _CONTROL).search(value)
        if found:
            return (f"the {column.field} ({column.japanese}) cell contains a control character "
                    f"(U+{ord(found.group()):04X}), which imported text may not hold; remove it")
    return None


def parse(kind: Kind, body: bytes, *, time_zone: tzinfo) -> ParsedFile:
    """Every row of the file, each with its record or the reason it is refused.
    `time_zone` is the issuer's: event times written without an offset are local."""
    rows = read_rows(decode(body))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)  # blank lines before the header
    if not rows:
        raise FileRefused("the file is empty: it needs a header row and at least one row")
    header = tuple(rows[0])
    fields = column_map(kind, header)
    build = _BUILDERS[kind]
    parsed = []
    for index, cells in enumerate(rows[1:], start=2):
        cells = tuple(cells)
        if not any(c.strip() for c in cells):
            parsed.append(Row(index, cells))
            continue
        if len(cells) > len(fields) and any(c.strip() for c in cells[len(fields):]):
            parsed.append(Row(index, cells, problem=f"the row has {len(cells)} cells but the header has {len(fields)}"))
            continue
        # A result file's rejected rows, fixed and imported again, come back with the quote
        # that kept a formula-like cell text (csv_files): it is not part of the value.
        values = {f: csv_files.unescape(cells[i] if i < len(cells) else "") for i, f in enumerate(fields) if f}
        problem = control_problem(kind, values)
        if problem is not None:
            parsed.append(Row(index, cells, problem=problem))
            continue
        try:
            parsed.append(Row(index, cells, record=build(values, time_zone)))
        except RowProblem as exc:
            parsed.append(Row(index, cells, problem=str(exc)))
    return ParsedFile(kind, header, tuple(_refuse_repeats(kind, parsed)))


def _refuse_repeats(kind: Kind, rows: list[Row]) -> Iterable[Row]:
    """A key that appears twice in one file refuses its later rows: which one the
    operator meant is not ours to guess."""
    keys: list[tuple[str, Callable[[Record], str]]] = {
        Kind.CARDS: [("card number", lambda r: r.card_number), ("IDm", lambda r: r.idm)],
        Kind.MERCHANTS: [("merchant id", lambda r: r.merchant_id)],
        Kind.TERMINALS: [("terminal id", lambda r: r.terminal_id)],
        Kind.EVENTS: [("event id", lambda r: r.event_id)],
        Kind.ADMIN_GRANTS: [("list id and card number", lambda r: f"{r.list_id}\n{r.card_number}")],
        Kind.EMONEY_SETTLEMENTS: [("card and card sequence number",
                                   lambda r: f"{r.card_number or r.idm}\n{r.card_seq}")],
    }[kind]
    first_seen: list[dict[str, int]] = [{} for _ in keys]
    for row in rows:
        if row.record is None:
            yield row
            continue
        problem = None
        for (what, key), seen in zip(keys, first_seen, strict=True):
            value = key(row.record)
            if value in seen and problem is None:
                problem = f"the same {what} is already on row {seen[value]} of this file"
            seen.setdefault(value, row.number)
        yield row if problem is None else Row(row.number, row.cells, problem=problem)


# --- fields ----------------------------------------------------------------------


def _folded(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def _text(values: dict[str, str], field: str, what: str) -> str:
    text = values.get(field, "").strip()
    if not text:
        raise RowProblem(f"{what} is empty")
    if len(text) > MAX_TEXT:
        raise RowProblem(f"{what} is longer than {MAX_TEXT} characters")
    return text


def _code(values: dict[str, str], field: str, what: str) -> str:
    code = _folded(values.get(field, ""))
    if not code:
        raise RowProblem(f"{what} is empty")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}", code):
        raise RowProblem(f"{what} may hold only letters, digits, '.', '_' and '-' (at most 64)")
    return code


def _optional_code(values: dict[str, str], field: str, what: str) -> str | None:
    return _code(values, field, what) if _folded(values.get(field, "")) else None


def _whole(values: dict[str, str], field: str, what: str, *, maximum: int, minimum: int = 1) -> int:
    text = _folded(values.get(field, ""))
    if not text:
        raise RowProblem(f"{what} is empty")
    if re.fullmatch(r"\d{1,3}(,\d{3})+", text):  # 5,000 as Excel shows it
        text = text.replace(",", "")
    if not re.fullmatch(r"[+-]?\d+", text):
        raise RowProblem(f"{what} must be a whole number, not {text!r}")
    number = int(text)
    if number < minimum:
        raise RowProblem(f"{what} must be at least {minimum}" if minimum != 1 else f"{what} must be above zero")
    if number > maximum:
        raise RowProblem(f"{what} must be at most {maximum:,}")
    return number


def _optional_whole(values: dict[str, str], field: str, what: str, *, maximum: int, minimum: int = 1) -> int | None:
    return _whole(values, field, what, maximum=maximum, minimum=minimum) if _folded(values.get(field, "")) else None


_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})|(\d{4})年(\d{1,2})月(\d{1,2})日")


def parse_date(text: str) -> date | None:
    """2022-10-24, 2022/10/24 (Excel's Japanese display), 2022/1/5 or 2022年10月24日."""
    match = _DATE.fullmatch(_folded(text))
    if not match:
        return None
    y, m, d = (int(g) for g in match.groups() if g is not None)
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _date(values: dict[str, str], field: str, what: str) -> date:
    text = values.get(field, "")
    if not text.strip():
        raise RowProblem(f"{what} is empty")
    day = parse_date(text)
    if day is None:
        raise RowProblem(f"{what} is not a date (write YYYY-MM-DD)")
    return day


def parse_instant(text: str, time_zone: tzinfo, *, end_of_day: bool) -> datetime | None:
    """An instant in UTC: ISO 8601 with an offset, or a local date and time in the
    issuer's time zone (2023-05-03 10:00, 2023/5/3 10:00). A date alone is the start of
    that day, or with `end_of_day` the start of the next (a window closing on 5 May
    stays open all of 5 May)."""
    folded = _folded(text)
    day = parse_date(folded)
    if day is not None:
        local = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(0), time_zone)
        return local.astimezone(_UTC)
    match = re.fullmatch(r"(\S+)[ T](\d{1,2}):(\d{2})(?::(\d{2}))?", folded)
    if match and parse_date(match.group(1)) is not None:
        day = parse_date(match.group(1))
        hour, minute, second = int(match.group(2)), int(match.group(3)), int(match.group(4) or 0)
        if hour > 23 or minute > 59 or second > 59:
            return None
        return datetime.combine(day, time(hour, minute, second), time_zone).astimezone(_UTC)
    try:
        value = datetime.fromisoformat(folded)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=time_zone)
    return value.astimezone(_UTC)


def _instant(values: dict[str, str], field: str, what: str, time_zone: tzinfo, *, end_of_day: bool) -> datetime:
    text = values.get(field, "")
    if not text.strip():
        raise RowProblem(f"{what} is empty")
    value = parse_instant(text, time_zone, end_of_day=end_of_day)
    if value is None:
        raise RowProblem(f"{what} is not a date and time (write YYYY-MM-DD HH:MM, or YYYY-MM-DD)")
    return value


# --- one builder per kind --------------------------------------------------------


def _card(values: dict[str, str], _tz: tzinfo) -> CardRow:
    number = _folded(values.get("card_number", "")).upper()
    if not is_card_number(number):
        raise RowProblem("the card number must be JW followed by 15 digits (17 characters)")
    idm = _folded(values.get("idm", "")).lower()
    if not is_idm(idm):
        raise RowProblem("the IDm must be 16 hexadecimal digits (0-9, a-f)")
    birth = _date(values, "birth_date", "the birth date")
    points = _whole(values, "points", "the initial points", maximum=MAX_POINTS)
    granted_on = _date(values, "granted_on", "the grant date")
    if birth.year < 1900:
        raise RowProblem("the birth date is before 1900")
    if birth > granted_on:
        raise RowProblem("the birth date is after the grant date")
    return CardRow(number, idm, birth, points, granted_on)


def _merchant(values: dict[str, str], _tz: tzinfo) -> MerchantRow:
    return MerchantRow(
        merchant_id=_code(values, "merchant_id", "the merchant id"),
        name=_text(values, "name", "the merchant name"),
        area=_text(values, "area", "the area"),
        category=_text(values, "category", "the category"),
        rebate_bps=_optional_whole(values, "rebate_bps", "the rebate rate (basis points)", minimum=0, maximum=10_000),
    )


def _terminal(values: dict[str, str], _tz: tzinfo) -> TerminalRow:
    terminal_id = _code(values, "terminal_id", "the terminal id")
    mode_text = _folded(values.get("mode", "")).lower()
    mode = MODE_NAMES.get(mode_text)
    if mode is None:
        raise RowProblem("the mode must be store, charger or event (店舗, チャージ, イベント)")
    merchant_id = _optional_code(values, "merchant_id", "the merchant id")
    event_id = _optional_code(values, "event_id", "the event id")
    if mode is Mode.STORE and merchant_id is None:
        raise RowProblem("a store terminal needs a merchant id")
    if mode is Mode.EVENT and event_id is None:
        raise RowProblem("an event terminal needs an event id")
    if mode is not Mode.EVENT and event_id is not None:
        raise RowProblem("only an event terminal has an event id")
    key = values.get("public_key", "").strip().replace("\\n", "\n")
    if not key:
        raise RowProblem("the public key is empty")
    if not (key.startswith("-----BEGIN PUBLIC KEY-----") and key.rstrip().endswith("-----END PUBLIC KEY-----")):
        raise RowProblem("the public key is not a PEM public key (-----BEGIN PUBLIC KEY----- ...)")
    return TerminalRow(terminal_id, mode, merchant_id, event_id, key.strip() + "\n")


def _event(values: dict[str, str], tz: tzinfo) -> EventRow:
    event_id = _code(values, "event_id", "the event id")
    name = _text(values, "name", "the event name")
    points = _whole(values, "points", "the points", maximum=MAX_POINTS)
    opens_at = _instant(values, "opens_at", "the opening time", tz, end_of_day=False)
    closes_at = _instant(values, "closes_at", "the closing time", tz, end_of_day=True)
    if closes_at <= opens_at:
        raise RowProblem("the event closes before it opens")
    validity = _optional_whole(values, "validity_months", "the validity (months)", maximum=MAX_VALIDITY_MONTHS)
    return EventRow(event_id, name, points, opens_at, closes_at, validity)


def _admin_grant(values: dict[str, str], _tz: tzinfo) -> AdminGrantRow:
    list_id = _code(values, "list_id", "the list id")
    number = _folded(values.get("card_number", "")).upper()
    if not is_card_number(number):
        raise RowProblem("the card number must be JW followed by 15 digits (17 characters)")
    points = _whole(values, "points", "the points", maximum=MAX_POINTS)
    reason = _text(values, "reason", "the reason")
    return AdminGrantRow(list_id, number, points, reason)


def _settlement(values: dict[str, str], tz: tzinfo) -> SettlementLine:
    number = _folded(values.get("card_number", "")).upper() or None
    if number is not None and not is_card_number(number):
        raise RowProblem("the card number must be JW followed by 15 digits (17 characters)")
    idm = _folded(values.get("idm", "")).lower() or None
    if idm is not None and not is_idm(idm):
        raise RowProblem("the IDm must be 16 hexadecimal digits (0-9, a-f)")
    if number is None and idm is None:
        raise RowProblem("the card number or the IDm is needed")
    seq = _whole(values, "card_seq", "the card sequence number", minimum=0, maximum=MAX_SEQ)
    amount = _whole(values, "amount", "the amount", maximum=MAX_SETTLEMENT_YEN)
    at = _instant(values, "paid_at", "the payment time", tz, end_of_day=False)
    terminal_id = _code(values, "terminal_id", "the terminal id")
    return SettlementLine(number, idm, seq, amount, at, terminal_id)


_BUILDERS: dict[Kind, Callable[[dict[str, str], tzinfo], Record]] = {
    Kind.CARDS: _card,
    Kind.MERCHANTS: _merchant,
    Kind.TERMINALS: _terminal,
    Kind.EVENTS: _event,
    Kind.ADMIN_GRANTS: _admin_grant,
    Kind.EMONEY_SETTLEMENTS: _settlement,
}


# --- outcomes and the result file ---------------------------------------------------


class Outcome(StrEnum):
    IMPORTED = "imported"  # done now: created, registered or granted
    UNCHANGED = "unchanged"  # already done, by this file before or by another one
    REJECTED = "rejected"
    BLANK = "blank"
    UNMATCHED = "unmatched"  # a settlement line that matches no record: listed, and in the reconciliation report


@dataclass(frozen=True)
class Rejection:
    row: int
    reason: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Tally:
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    blank: int = 0
    points: int = 0  # points granted by this run (initial or admin grants)
    unmatched: int = 0  # settlement lines that matched no record (emoney-settlements only)

    def add(self, outcome: Outcome, points: int = 0) -> Tally:
        counts = {o.value: getattr(self, o.value) for o in Outcome}
        counts[outcome.value] += 1
        return Tally(**counts, points=self.points + points)

    @property
    def rows(self) -> int:
        return self.imported + self.unchanged + self.rejected + self.unmatched

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "imported": self.imported, "unchanged": self.unchanged,
                "rejected": self.rejected, "blank": self.blank, "points": self.points, "unmatched": self.unmatched}


class Status(StrEnum):
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class RunState:
    """How far one run of one file has come: `next_index` is the index (in the parsed
    file's rows) of the first row not done yet."""

    next_index: int = 0
    tally: Tally = Tally()
    status: Status = Status.RUNNING


def run_id(*parts: str) -> str:
    """A run's id: what makes it this run (the S3 object version and content, say)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def content_sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def to_csv(lines: Iterable[Sequence[object]]) -> bytes:
    """CSV that Excel opens as UTF-8 (a BOM first, CRLF line ends), with text that starts
    like a formula written as text (csv_files)."""
    return csv_files.to_csv(lines)


def result_csv(
    *,
    source: str,
    kind: str,
    tally: Tally,
    rejections: Sequence[Rejection],
    header: Sequence[str] = (),
    complete: bool = True,
    rows_total: int | None = None,
    refused: str | None = None,
) -> bytes:
    """The operator's result file: a summary, then each rejected row with its number, the
    reason, and the row as it was written (under the file's own header, so the rejected
    rows can be copied into a new file, fixed and imported again)."""
    if refused is not None:
        status = f"refused: {refused}"
    elif complete:
        status = "complete"
    else:
        status = f"in progress: {tally.rows + tally.blank} of {rows_total} rows done"
    lines: list[Sequence[object]] = [
        ("file", source),
        ("kind", kind),
        ("status", status),
        ("rows", tally.rows),
        ("imported", tally.imported),
        ("unchanged (already imported)", tally.unchanged),
        ("rejected", tally.rejected),
        ("blank rows skipped", tally.blank),
        ("points granted", tally.points),
        *((("unmatched (see the reconciliation report)", tally.unmatched),) if kind == Kind.EMONEY_SETTLEMENTS else ()),
        (),
        ("row", "reason", *header),
    ]
    lines += [(r.row, r.reason, *r.cells) for r in sorted(rejections, key=lambda r: r.row)]
    return to_csv(lines)
