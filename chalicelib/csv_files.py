"""The one writer of every CSV file operators open in Excel (reports, import result
files): UTF-8 with a BOM and CRLF line ends, and no cell a spreadsheet would run as a
formula (SPEC §10; OWASP "CSV injection").

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written
with a single quote in front, so Excel shows it as text: a merchant named
`=HYPERLINK("http://…","…")` reaches settlement.csv as words, not as a link. Only text is
escaped: integers (points, yen, counts) are written as they are, so a negative net
(`-500`) stays a number Excel can add up. Report code passes figures as int, never as
str. A text cell that merely looks like a number (`-500` typed in an imported row) is
text, and is escaped like any other.

Control characters other than tab, CR and LF (NUL and the like) are written as U+FFFD:
they only reach a file in a rejected import row as it was typed, and spreadsheets cut
or refuse a file at a NUL.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def safe_cell(value: object) -> object:
    """`value` as written to a cell: None as empty, formula-like text escaped."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub("\ufffd", value)
    return ESCAPE + text if text.startswith(FORMULA_STARTS) else text


def unescape(text: str) -> str:
    """A cell read back from a file this module wrote (a result file's rejected rows,
    fixed and imported again): the escaping quote taken off."""
    if text.startswith(ESCAPE) and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def to_csv(rows: Iterable[Sequence[object]]) -> bytes:
    """The file's bytes: a BOM, then each row with every cell made safe, CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return (BOM + buffer.getvalue()).encode("utf-8")
