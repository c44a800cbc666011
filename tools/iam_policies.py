"""Each Lambda function's IAM policy: one role per function kind, each allowed only the
actions and resources that kind uses (DESIGN: least privilege).

    python -m tools.iam_policies          # write .chalice/policy-<stage>[-<function>].json
    python -m tools.iam_policies --check  # exit 1 when a file differs from this table

Chalice gives every Lambda function its own role (`chalice package`), with the policy
file named for it in `.chalice/config.json` under
`stages.<stage>.lambda_functions.<function>.iam_policy_file`; a function without one
falls back to the stage's `iam_policy_file`, which is the API handler's policy.

To add a function kind (a new schedule, an SQS consumer, …): add an entry to
`FUNCTIONS` below with the grants it uses, run `python -m tools.iam_policies`, add its
`iam_policy_file` (`policy-<stage>-<function>.json`) for both stages in
`.chalice/config.json`, and its expected actions in
tests/integration/test_stack_template.py (`EXPECTED_ACTIONS`). The stack test fails
until all three agree and every function has a role of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("dev", "prod")
MAIL_DOMAIN = "points.example.jp"  # infra/template.json's MailDomain default; CHIIKI_MAIL_FROM's domain
API = "api_handler"  # Chalice's name for the function behind API Gateway

# DynamoDB: what reading the ledger and writing it (one TransactWriteItems of puts,
# updates and condition checks, or single conditional writes) needs. No Scan, no
# BatchWriteItem: only the audit scans, and nothing writes in unconditioned batches.
READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable")
WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
DELETE = ("dynamodb:DeleteItem",)


@dataclass(frozen=True)
class Grants:
    """What one function kind uses."""

    table: tuple[str, ...] = ()  # DynamoDB actions on the application table
    indexes: tuple[str, ...] = ()  # indexes it queries
    read_objects: tuple[tuple[str, str], ...] = ()  # (bucket kind, key prefix) it reads
    write_objects: tuple[tuple[str, str], ...] = ()  # (bucket kind, key prefix) it writes
    list_buckets: tuple[str, ...] = ()  # bucket kinds it lists (and so gets 404, not 403, for a missing key)
    list_versions: tuple[str, ...] = ()  # bucket kinds whose object versions it lists
    mail: bool = False  # SES SendEmail from the stage's identity
    secret: bool = False  # the stage secret (Secrets Manager)
    send_to: tuple[str, ...] = ()  # queues (by kind: "mail") it puts messages on
    consume: tuple[str, ...] = ()  # queues it is the Lambda consumer of
    extra: tuple[dict, ...] = field(default=())  # anything else, as IAM statements


FUNCTIONS: dict[str, Grants] = {
    # MyPage, the terminal API, the admin API (imports through it are answered in the
    # response, so no bucket is written; `job run` runs the ledger jobs, not the reports
    # or the audit), report downloads.
    API: Grants(
        table=READ + WRITE + DELETE,
        indexes=("by-expiry", "by-dormancy"),  # the admin API runs the ledger jobs on request
        read_objects=(("reports", "reports/"),),
        list_buckets=("reports",),
        mail=True,  # operators' notices; MyPage's own mail only goes on the queue
        secret=True,
        send_to=("mail",),
    ),
    "expire-points": Grants(table=READ + WRITE, indexes=("by-expiry",)),
    "grant-rebates": Grants(table=READ + WRITE),
    "grant-campaigns": Grants(table=READ + WRITE),
    "sweep-dormant": Grants(table=READ + WRITE + DELETE, indexes=("by-dormancy",)),
    "send-reminders": Grants(table=READ + WRITE + DELETE, mail=True),
    # Reads the aggregates; writes only report files.
    "write-reports": Grants(
        table=READ,
        read_objects=(("reports", "reports/"),),
        write_objects=(("reports", "reports/"),),
        list_buckets=("reports",),
    ),
    # Reads the cards changed since the last anchor (by-change), scans only for an
    # issuer's first anchor, puts the day's anchor item and a paused piece's checkpoint,
    # writes and reads the locked anchor and shard files. No other bucket.
    "audit-chains": Grants(
        table=("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
               "dynamodb:DescribeTable", "dynamodb:PutItem"),
        indexes=("by-change",),
        read_objects=(("anchors", "anchors/"), ("anchors", "anchor-shards/")),
        write_objects=(("anchors", "anchors/"), ("anchors", "anchor-shards/")),
        list_buckets=("anchors",),
        list_versions=("anchors",),
    ),
    # MyPage's queued mail, sent with SES; nothing in the table.
    "send-mail": Grants(mail=True, consume=("mail",)),
    # Reads what operators drop, leaves its continuation markers beside them, writes
    # the result files to the reports bucket.
    "import-csv": Grants(
        table=READ + WRITE + DELETE,  # a settlement line's match removes its unmatched mark
        read_objects=(("imports", ""),),
        write_objects=(("imports", "_continue/"), ("reports", "import-results/")),
        list_buckets=("imports",),
    ),
}


def policy_file(stage: str, function: str) -> str:
    return f"policy-{stage}.json" if function == API else f"policy-{stage}-{function}.json"


def bucket_arn(stage: str, kind: str) -> str:
    # The buckets' names end with the account id; IAM fills in the function's own.
    return f"arn:aws:s3:::chiiki-points-{stage}-{kind}-${{aws:PrincipalAccount}}"


def queue_arn(stage: str, kind: str) -> str:
    return f"arn:aws:sqs:*:*:chiiki-points-{stage}-{kind}"


def policy(stage: str, grants: Grants) -> dict:
    table = f"arn:aws:dynamodb:*:*:table/chiiki-points-{stage}"
    statements: list[dict] = [
        {"Sid": "Logs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/*"},
    ]
    if grants.table:
        resources = [table] + [f"{table}/index/{index}" for index in grants.indexes]
        statements.append({"Sid": "Ledger", "Effect": "Allow", "Action": list(grants.table), "Resource": resources})
    if grants.read_objects:
        actions = ["s3:GetObject", "s3:GetObjectVersion"]
        resources = [f"{bucket_arn(stage, kind)}/{prefix}*" for kind, prefix in grants.read_objects]
        statements.append({"Sid": "ReadObjects", "Effect": "Allow", "Action": actions, "Resource": resources})
    if grants.write_objects:
        resources = [f"{bucket_arn(stage, kind)}/{prefix}*" for kind, prefix in grants.write_objects]
        statements.append({"Sid": "WriteObjects", "Effect": "Allow", "Action": ["s3:PutObject"],
                           "Resource": resources})
    if grants.list_buckets:
        statements.append({"Sid": "MissingObjectsAre404", "Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [bucket_arn(stage, kind) for kind in grants.list_buckets]})
    if grants.list_versions:
        statements.append({"Sid": "ListVersions", "Effect": "Allow", "Action": ["s3:ListBucketVersions"],
                           "Resource": [bucket_arn(stage, kind) for kind in grants.list_versions]})
    if grants.mail:
        statements.append({"Sid": "Mail", "Effect": "Allow", "Action": ["ses:SendEmail"],
                           "Resource": f"arn:aws:ses:*:*:identity/{MAIL_DOMAIN}"})
    if grants.secret:
        # Secrets Manager appends six random characters to a secret's name in its ARN.
        statements.append({"Sid": "StageSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": f"arn:aws:secretsmanager:*:*:secret:chiiki-points/{stage}-??????"})
    if grants.send_to:
        statements.append({"Sid": "QueueSend", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                           "Resource": [queue_arn(stage, kind) for kind in grants.send_to]})
    if grants.consume:
        statements.append({"Sid": "QueueConsume", "Effect": "Allow",
                           "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                           "Resource": [queue_arn(stage, kind) for kind in grants.consume]})
    statements.extend(grants.extra)
    statements += [
        {"Sid": "Metrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": "ChiikiPoints"}}},
        {"Sid": "Traces", "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
         "Resource": "*"},
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def rendered() -> dict[Path, str]:
    return {
        ROOT / ".chalice" / policy_file(stage, function): json.dumps(policy(stage, grants), indent=2) + "\n"
        for stage in STAGES
        for function, grants in FUNCTIONS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.iam_policies", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    differ = [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in differ:
            print(f"{path.relative_to(ROOT)} differs from tools/iam_policies.py", file=sys.stderr)
        return 1 if differ else 0
    for path in differ:
        path.write_text(rendered()[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
