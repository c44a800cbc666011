"""The card-month briefs of charges recorded before they existed, written once at deploy.

The campaign job reads a card's charges from its card-month briefs (store.CardMonthItem),
appended with each charge record since they exist. Charges recorded before that are only
in the TXN items: run this once after deploying, for the months of every campaign that is
still running (or may yet settle), per issuer. It reads only the cards that charged in
those months, writes only briefs that lack charges, and is safe while terminals record
and to run again.

    python -m chalicelib.terminals.briefs <issuer> <first YYYY-MM> <last YYYY-MM>
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from .. import services

    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    issuer, first, last = argv
    terminals = services.terminals()
    for month in _months(first, last):
        print(f"{issuer} {month}: {terminals.brief_month(issuer, month)} cards' briefs written")
    return 0


def _months(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    found = []
    while f"{year:04d}-{month:02d}" <= last:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
