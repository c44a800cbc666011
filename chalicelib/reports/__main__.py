"""The operators' CLI for reports and the audit, against the deployed table and bucket
(the settings come from the environment, as in Lambda: CHIIKI_TABLE, CHIIKI_REPORTS_BUCKET, …).

    python -m chalicelib.reports month  --issuer niimi --month 2025-06
    python -m chalicelib.reports anchor --issuer niimi [--date 2025-07-01]
    python -m chalicelib.reports audit  --issuer niimi [--against 2025-07-01 | --no-anchor]

`audit` exits 1 when a chain fails, and prints each failing card (in full, for the
operator to act on: this output is not a log). The log lines go to stderr, through the
Powertools logger, each with the run's correlation id.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date


def main(argv: list[str] | None = None) -> int:
    from .. import observability

    parser = argparse.ArgumentParser(prog="python -m chalicelib.reports")
    sub = parser.add_subparsers(dest="command", required=True)
    month = sub.add_parser("month", help="write one month's reports to S3")
    month.add_argument("--issuer", required=True)
    month.add_argument("--month", required=True, help="YYYY-MM")
    anchor = sub.add_parser("anchor", help="anchor every chain head (once per day)")
    anchor.add_argument("--issuer", required=True)
    anchor.add_argument("--date", type=date.fromisoformat)
    check = sub.add_parser("audit", help="verify every chain, against an anchor")
    check.add_argument("--issuer", required=True)
    check.add_argument("--against", type=date.fromisoformat, help="the anchor's day (default: the newest)")
    check.add_argument("--no-anchor", action="store_true", help="verify the chains only")
    check.add_argument("--progress-every", type=int, default=1000)
    args = parser.parse_args(argv)
    # Its log lines (Powertools, on stderr) carry a correlation id, as a function's do.
    with observability.command(f"chalicelib.reports {args.command}"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .. import services
    from .audit import audit, take_anchor

    ledger, store = services.ledger(), services.report_store()
    today = ledger.today(args.issuer)
    if args.command == "month":
        print(json.dumps(services.reports().write_month(args.issuer, args.month, as_of=today.isoformat()), indent=2))
        return 0
    if args.command == "anchor":
        taken = take_anchor(ledger, store, args.issuer, args.date or today, now=ledger.clock())
        print(json.dumps({"day": taken.day.isoformat(), "cards": taken.count, "digest": taken.digest,
                          "file": taken.object_key}, indent=2))
        return 0
    against = None
    if not args.no_anchor:
        against = store.get_anchor(args.issuer, args.against) if args.against else store.latest_anchor(
            args.issuer, before=date.max
        )
        if args.against and against is None:
            print(f"no anchor on {args.against}", file=sys.stderr)
            return 2
    report = audit(ledger, store, args.issuer, against=against, progress_every=args.progress_every)
    print(json.dumps({
        "ok": report.ok, "cards": report.cards, "entries": report.entries, "seconds": round(report.seconds, 3),
        "anchor": report.anchor and report.anchor.isoformat(), "anchor_problem": report.anchor_problem,
        "failures": [{"idm": f.idm, "seq": f.bad_seq, "problem": f.problem} for f in report.failures],
    }, ensure_ascii=False, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
