"""The operators' command line for the admin API.

    python -m tools.admin --api URL --issuer niimi card show JW123456789012345
    python -m tools.admin card return JW123456789012345 --reason moving --note "転出"
    python -m tools.admin card reissue JW123456789012345 --new-number JW… --new-idm 0123456789abcdef
    python -m tools.admin card void JW123456789012345 --note "issued in error" --close
    python -m tools.admin merchant add M-1 --name 新見精肉店 --area 新見 --category 食料品
    python -m tools.admin merchant list
    python -m tools.admin terminal add T-1 --mode store --merchant M-1 --key terminal.pub.pem
    python -m tools.admin terminal disable T-1        (enable T-1; add --replace-key rotates a key)
    python -m tools.admin event add E-1 --name 健康ウォーク --points 500 --opens … --closes …
    python -m tools.admin rate add R-1 --bps 200 --from 2024-07-01 --to 2024-07-31
    python -m tools.admin campaign add|list|enrol …
    python -m tools.admin grant-list volunteers.csv --reason "volunteering 2024-06"
    python -m tools.admin import cards cards.csv      (merchants, terminals, events, admin-grants,
                                                       emoney-settlements)
    python -m tools.admin report list 2025-06
    python -m tools.admin report get 2025-06 [settlement …] [--out DIR]
    python -m tools.admin job run expiry

`--api` (or CHIIKI_ADMIN_API) is the API's base URL: the execute-api URL with its stage
for a deployed stack (https://<id>.execute-api.<region>.amazonaws.com/api), or
http://127.0.0.1:8000 under `make run`. `--issuer` (or CHIIKI_ADMIN_ISSUER) picks the
issuer. Every request is signed with AWS Signature Version 4 (service execute-api) with
credentials from the default chain (environment, profile, SSO, instance role); API
Gateway checks the signature and the caller's IAM policy, and the ledger records the
caller's ARN. Under `make run` nothing checks the signature, and without credentials
the CLI signs with a placeholder for a loopback address only.

Card changes carry a request id (a new one unless --request-id is given): when an answer
is lost, repeat the command with the id it printed, and the change is made once.

`import` posts the file (at most 1,000 rows) to the import route, prints the summary and
each rejected row with its reason, and saves the result file beside the input
(cards.csv -> cards.result.csv). Rejected rows are the file's to fix, not a failure: the
import is done. When time runs out first, the rows so far are done: run the same command
again to go on (the rows already done come back unchanged). `report get` writes a month's
CSV files (all of them unless named) byte for byte as the reports schedule wrote them,
UTF-8 with a BOM so that Excel opens them, under the names the API gives them
(<issuer>-<month>-<name>.csv).

Exit status: 0 done, 1 refused by the API, 2 not sent, no answer or a local file not
read or written, 3 an import stopped part way (run the same command again).

The package: `transport` signs and sends (`Api`, `Failed`), `render` prints, one module
per command group holds its commands and adds its own parser (`cards`, `settings`,
`merchants` with terminals, events and rates, `campaigns`, `grants`, `reports`,
`imports`, `jobs`), and `cli` puts the parsers together and runs (`main`).
"""

from tools.admin.cli import main, parser

__all__ = ["main", "parser"]
