"""`python -m localdev.imports FILE <issuer>/<kind>/<name>.csv`: drop a CSV file in
`make run`'s imports bucket (moto's server on CHIIKI_MOTO_PORT, default 5005) and run
the import as the bucket's notification would, through the very function the deployed
import-csv Lambda calls (chalicelib.imports.handle_s3_event, with services.importer()).
Kinds: cards, merchants, terminals, events, admin-grants. The result file is written to
the reports bucket."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from localdev.fake_aws import REGION, use_fake_aws
from localdev.stack import HOST, app_env


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.imports", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="the CSV file to drop")
    parser.add_argument("key", help="where to drop it: <issuer>/<kind>/<name>.csv, e.g. niimi/cards/2026-11.csv")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"No such file: {args.file}", file=sys.stderr)
        return 2
    use_fake_aws(in_process=False)
    moto = f"http://{HOST}:{os.environ.get('CHIIKI_MOTO_PORT') or 5005}"
    os.environ.update(app_env(moto))

    import boto3

    from chalicelib import imports, observability, services
    from chalicelib.errors import ChiikiError

    bucket = services.settings().imports_bucket
    try:
        boto3.client("s3", region_name=REGION, endpoint_url=moto).put_object(
            Bucket=bucket, Key=args.key, Body=args.file.read_bytes())
    except Exception as exc:  # noqa: BLE001 (say plainly what is wrong, then stop)
        print(f"Cannot reach the local stack at {moto} ({exc}): is `make run` running?", file=sys.stderr)
        return 2
    event = {"Records": [{"eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": bucket}, "object": {"key": args.key}}}]}
    try:
        # The import's log lines (on stderr) carry a correlation id of their own, as in Lambda.
        with observability.command("localdev.imports"):
            [report] = imports.handle_s3_event(services.importer(), event)
    except ChiikiError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 1
    if report is None:
        print("Nothing to do.")
        return 0
    figures = ", ".join(f"{name} {value:,}" for name, value in report.tally.as_dict().items())
    print(f"{args.key}: {figures}" + (f"; refused: {report.refused}" if report.refused else ""))
    for rejection in report.rejections:
        print(f"  row {rejection.row}: {rejection.reason}")
    print(f"Result file: s3://{services.settings().reports_bucket}/{report.result_key}")
    return 1 if report.refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
