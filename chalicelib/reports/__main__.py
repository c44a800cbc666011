"""The operators' CLI for reports and the audit, against the deployed table and bucket
(the settings come from the environment, as in Lambda: CHIIKI_TABLE, CHIIKI_REPORTS_BUCKET, …).

    python -m chalicelib.reports month  --issuer niimi --month 2025-06
    python -m chalicelib.reports anchor --issuer niimi [--date 2025-07-01]
    python -m chalicelib.reports audit  --issuer niimi [--against 2025-07-01 | --no-anchor] [--shard N]
    python -m chalicelib.reports daily  --issuer niimi [--date 2025-07-01] [--workers 8]

`audit` is the full re-verification (every entry of every card, from its first): one
shard with `--shard N` (0..SHARDS-1), so operators can fan it out over shells or
functions. `daily` runs the daily job's pieces (only the cards changed since the last
anchor) and seals the day's anchor, as the schedule does.

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
    check.add_argument("--shard", type=int, help="one shard only (the full audit split by shard)")
    daily = sub.add_parser("daily", help="the daily job: the changed cards, then the day's anchor")
    daily.add_argument("--issuer", required=True)
    daily.add_argument("--date", type=date.fromisoformat)
    daily.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # Its log lines (Powertools, on stderr) carry a correlation id, as a function's do.
    with observability.command(f"chalicelib.reports {args.command}"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .. import services
    from .audit import audit, run_audit, take_anchor

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
    if args.command == "daily":
        daily = run_audit(ledger, store, args.issuer, args.date or today, now=ledger.clock(), workers=args.workers)
        print(json.dumps({
            "ok": daily.ok, "cards": daily.cards, "entries": daily.entries, "shards_adopted": daily.shards_adopted,
            "anchor": daily.anchor and daily.anchor.isoformat(), "anchor_problem": daily.anchor_problem,
            "failures": [{"idm": f.idm, "seq": f.bad_seq, "problem": f.problem} for f in daily.failures],
        }, ensure_ascii=False, indent=2))
        return 0 if daily.ok else 1
    against = None
    if not args.no_anchor:
        against = store.get_anchor(args.issuer, args.against) if args.against else store.latest_anchor(
            args.issuer, before=date.max
        )
        if args.against and against is None:
            print(f"no anchor on {args.against}", file=sys.stderr)
            return 2
    report = audit(ledger, store, args.issuer, against=against, shard=args.shard, progress_every=args.progress_every)
    print(json.dumps({
        "ok": report.ok, "shard": args.shard, "cards": report.cards, "entries": report.entries,
        "seconds": round(report.seconds, 3),
        "anchor": report.anchor and report.anchor.isoformat(), "anchor_problem": report.anchor_problem,
        "failures": [{"idm": f.idm, "seq": f.bad_seq, "problem": f.problem} for f in report.failures],
    }, ensure_ascii=False, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
