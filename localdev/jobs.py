"""`python -m localdev.jobs expiry`: run a scheduled job by hand against `make run`'s
stack (moto's server on CHIIKI_MOTO_PORT, default 5005), as its schedule would, for
every issuer on the issuer's today."""

from __future__ import annotations

import argparse
import os
import sys

from localdev.fake_aws import REGION, use_fake_aws
from localdev.stack import HOST, stage_env

JOBS = ("expiry",)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=JOBS)
    parser.parse_args(argv)  # one job so far; each new job gets its branch below
    use_fake_aws(in_process=False)
    moto = f"http://{HOST}:{os.environ.get('CHIIKI_MOTO_PORT') or 5005}"

    from chalicelib.jobs.expiry import run_expiry
    from chalicelib.ledger.service import Ledger
    from chalicelib.ledger.store import CardStore
    from chalicelib.table import Table

    try:
        ledger = Ledger(CardStore(Table(stage_env()["CHIIKI_TABLE"], REGION, host=moto)))
        issuers = ledger.store.issuer_ids()
    except Exception as exc:  # noqa: BLE001 (say plainly what is wrong, then stop)
        print(f"Cannot reach the local stack at {moto} ({exc}): is `make run` running?", file=sys.stderr)
        return 2
    for issuer_id in issuers:
        report = run_expiry(ledger, issuer_id, on=ledger.today(issuer_id))
        swept = f"{report.days[0]} … {report.days[-1]}" if report.days else "nothing new"
        print(f"{issuer_id}: expiry as of {report.on}: days swept {swept}; "
              f"{report.expired_cards} cards, {report.points:,} pt expired")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
