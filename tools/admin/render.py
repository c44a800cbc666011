"""Printing: a card, one record's fields, rows as a table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def pts(n: int) -> str:
    return f"{n:,} pt"


def show_card(card: dict) -> str:
    lines = [
        f"Card {card['card_number']}  IDm {card['idm']}  issuer {card['issuer']}  status {card['status']}",
        f"Balance {pts(card['balance'])} as of {card['as_of']}; last grant or spend {card['last_activity'] or '-'}",
    ]
    lines.append("Lots:" if card["lots"] else "Lots: none with points")
    for lot in card["lots"]:
        lines.append(f"  lot {lot['lot']:<6} {pts(lot['points']):>12}  valid {lot['valid_from']} to "
                     f"{lot['expires_on']}  {lot['source']:<9} {lot['state']}")
    lines.append("Recent history, newest first:" if card["history"] else "History: none")
    for entry in card["history"]:
        who = entry["actor"].get("id", "")
        why = f"  ({entry['reason']})" if entry.get("reason") else ""
        lines.append(f"  {entry['day']}  {entry['kind']:<13} {entry['points']:>+10,}  {entry['actor']['kind']} "
                     f"{who}{why}")
    return "\n".join(lines)


def show_fields(data: dict) -> str:
    width = max((len(k) for k in data), default=0)
    return "\n".join(f"{k:<{width}}  {_value(v)}" for k, v in data.items())


def _value(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if v is None:
        return "-"
    return str(v)


def show_rows(rows: list[dict], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    table = [list(columns)] + [[_value(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
