"""The admin CLI's entry: the global options, every command group's parser (each group's
module adds its own), and `main`, which runs the command and prints its answer."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from tools.admin import campaigns, cards, grants, imports, jobs, merchants, reports, settings
from tools.admin.transport import Api, Failed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.admin", description="The Chiiki Points admin API, signed with "
                                "SigV4 (credentials from the default AWS chain).")
    p.add_argument("--api", default=os.environ.get("CHIIKI_ADMIN_API"),
                   help="base URL (env CHIIKI_ADMIN_API), e.g. https://<id>.execute-api.<region>.amazonaws.com/api")
    p.add_argument("--issuer", default=os.environ.get("CHIIKI_ADMIN_ISSUER"),
                   help="issuer id (env CHIIKI_ADMIN_ISSUER)")
    p.add_argument("--region", help="signing region (default: from the URL, else AWS_REGION, else ap-northeast-1)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer as it is")
    commands = p.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for group in (cards, settings, merchants, campaigns, grants, reports, imports, jobs):
        group.add_commands(commands)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.api:
        print("error: give the API's URL with --api or CHIIKI_ADMIN_API", file=sys.stderr)
        return 2
    if not args.issuer:
        print("error: give the issuer with --issuer or CHIIKI_ADMIN_ISSUER", file=sys.stderr)
        return 2
    api = Api(args.api, args.issuer, args.region)
    try:
        outcome = args.run(api, args)
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    answer, show, *code = outcome  # a command may end with its own exit status
    print(json.dumps(answer, ensure_ascii=False, indent=2) if args.json else show(answer))
    return code[0] if code else 0
