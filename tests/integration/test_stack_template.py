"""The deployable stack: `chalice package --merge-template infra/template.json` (what `make
package` runs), checked by cfn-lint, and the properties the runbook relies on: the table's
recovery and TTL, every alarm, CloudFront's routes, private buckets, the anchors bucket's
Object Lock, and one IAM role per function kind with only the actions it uses. No AWS
account is needed: only the generated template is read."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import iam_policies

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGE = "prod"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
SCHEDULES = {"expire-points", "grant-rebates", "grant-campaigns", "sweep-dormant", "send-reminders",
             "write-reports", "audit-chains"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / STAGE
    env = {**os.environ, "AWS_DEFAULT_REGION": "ap-northeast-1"}
    subprocess.run(
        [str(BIN / "chalice"), "package", "--stage", STAGE, "--merge-template", "infra/template.json", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=300,
    )
    return out / "sam.json"


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return json.loads(packaged.read_text())


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def of_type(resources: dict, kind: str) -> dict:
    return {name: r for name, r in resources.items() if r.get("Type") == kind}


def test_cfn_lint_passes(packaged):
    lint = subprocess.run([str(BIN / "cfn-lint"), str(packaged)], capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_table_keeps_recovery_ttl_and_the_jobs_indexes(resources):
    table = resources["AppTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert {g["IndexName"] for g in props["GlobalSecondaryIndexes"]} == {"by-expiry", "by-dormancy", "by-change"}


def _alarm_metrics(alarm: dict) -> list[tuple[str, str, dict]]:
    """(namespace, metric name, dimensions) of an alarm, single metric or metric math."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props["Dimensions"]})]
    found = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found.append((metric["Namespace"], metric["MetricName"],
                          {d["Name"]: d["Value"] for d in metric["Dimensions"]}))
        else:
            found.append(("expression", json.dumps(query["Expression"]), {}))
    return found


def test_every_alarm_is_there_and_notifies_the_operators(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    metrics = {name: _alarm_metrics(alarm) for name, alarm in alarms.items()}
    flat = [m for found in metrics.values() for m in found]

    # API 5xx rate: 5XXError over Count, for this stage's API (named per stage).
    assert ("AWS/ApiGateway", "5XXError", {"ApiName": {"Fn::Sub": "chiiki-points-${Stage}"}, "Stage": "api"}) in flat
    assert resources["RestAPI"]["Properties"]["Name"] == {"Fn::Sub": "chiiki-points-${Stage}"}
    # DynamoDB throttles on the ledger table, every operation.
    assert any(ns == "expression" and "ThrottledRequests" in expr and "chiiki-points-${Stage}" in expr
               for ns, expr, _ in flat)
    # Every scheduled job and the import function: its Lambda Errors.
    functions = of_type(resources, "AWS::Serverless::Function")
    scheduled = {name for name, f in functions.items()
                 if any(e["Type"] == "Schedule" for e in f["Properties"].get("Events", {}).values())}
    assert len(scheduled) == len(SCHEDULES)
    watched = {dims["FunctionName"]["Ref"] for ns, metric, dims in flat if (ns, metric) == ("AWS/Lambda", "Errors")}
    assert scheduled | {"ImportCsv"} <= watched
    # Signature rejections: the custom metric the middleware flushes.
    assert ("ChiikiPoints", "SignatureRejected", {"service": "chiiki-points", "stage": {"Ref": "Stage"}}) in flat
    # MyPage refusals (codes, card links, logins over their limits): the metric the service counts.
    assert ("ChiikiPoints", "MyPageRefused", {"service": "chiiki-points", "stage": {"Ref": "Stage"}}) in flat
    # Reconciliation late: a month's rebate day passed without its settlement file (jobs/rebate.py).
    late = {"service": "chiiki-points", "stage": {"Ref": "Stage"}}
    assert ("ChiikiPoints", "ReconciliationLate", late) in flat
    (late_alarm,) = [a for a in alarms.values() if a["Properties"].get("MetricName") == "ReconciliationLate"]
    assert late_alarm["Properties"]["Period"] == 86400 and late_alarm["Properties"]["Threshold"] == 1

    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "OperatorEmail"}}]
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    # Every alarm is on the dashboard's alarm widget, so an operator sees them in one place.
    shown = set(re.findall(r"\$\{(\w+)\.Arn\}", dashboard["Properties"]["DashboardBody"]["Fn::Sub"]))
    assert set(alarms) <= shown, set(alarms) - shown


def test_cloudfront_serves_the_pwa_privately_and_routes_api_to_api_gateway(resources):
    distributions = of_type(resources, "AWS::CloudFront::Distribution").values()
    (config,) = [d["Properties"]["DistributionConfig"] for d in distributions]
    origins = {o["Id"]: o for o in config["Origins"]}

    (api,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/api/*"]
    origin = origins[api["TargetOriginId"]]
    assert "${RestAPI}.execute-api." in origin["DomainName"]["Fn::Sub"]
    assert origin["OriginPath"] == "/" + resources["RestAPI"]["Properties"]["StageName"]
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api["CachePolicyId"] == CACHING_DISABLED  # nothing under /api is cached
    assert api["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST  # cookie, CSRF and signature headers
    assert api["ViewerProtocolPolicy"] == "https-only"
    assert {"POST", "DELETE", "PUT", "PATCH"} <= set(api["AllowedMethods"])
    # CloudFront proves itself to the API with the stage secret's origin_key, so a caller
    # going around it cannot choose the address the login limits count (mypage/routes.py).
    (header,) = origin["OriginCustomHeaders"]
    secret = "{{resolve:secretsmanager:chiiki-points/${Stage}:SecretString:origin_key}}"
    assert header == {"HeaderName": "X-Chiiki-Origin", "HeaderValue": {"Fn::Sub": secret}}
    for name, function in of_type(resources, "AWS::Serverless::Function").items():
        # The functions get the secret's name only; the API reads the keys at run time.
        own = function["Properties"]["Environment"]["Variables"]
        assert own["CHIIKI_SECRET_ID"] == f"chiiki-points/{STAGE}", name
        assert not {"CHIIKI_SECRET_KEY", "CHIIKI_ORIGIN_KEY"} & set(own), name
        assert "resolve:secretsmanager" not in json.dumps(function), name

    default = config["DefaultCacheBehavior"]
    site = origins[default["TargetOriginId"]]
    assert site["DomainName"] == {"Fn::GetAtt": ["SiteBucket", "RegionalDomainName"]}
    assert site["OriginAccessControlId"] == {"Fn::GetAtt": ["SiteOriginAccessControl", "Id"]}
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    for behaviour in (default, api):
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeaders"}
    headers = resources["SecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert {"StrictTransportSecurity", "ContentTypeOptions", "FrameOptions", "ContentSecurityPolicy"} <= set(headers)

    statements = resources["SiteBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (read,) = [s for s in statements if s["Effect"] == "Allow"]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"} and read["Action"] == "s3:GetObject"
    assert "distribution/${Distribution}" in read["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]


def test_buckets_are_private_encrypted_and_tls_only(resources):
    buckets = of_type(resources, "AWS::S3::Bucket")
    assert set(buckets) == {"ImportsBucket", "ReportsBucket", "SiteBucket", "AnchorsBucket"}
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }, name
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, name
        policy = resources[f"{name}Policy"]["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy), name
    assert buckets["ReportsBucket"]["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_anchors_go_to_a_bucket_locked_in_compliance_mode(template, resources):
    anchors = resources["AnchorsBucket"]
    props = anchors["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}  # Object Lock needs it
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": {"Ref": "AnchorRetentionDays"}}},
    }
    assert template["Parameters"]["AnchorRetentionDays"]["Default"] == 3650
    assert "LifecycleConfiguration" not in props  # nothing expires a locked anchor early
    assert anchors["DeletionPolicy"] == "Retain"
    assert props["BucketName"] == {"Fn::Sub": "chiiki-points-${Stage}-anchors-${AWS::AccountId}"}


def test_csv_dropped_in_the_imports_bucket_invokes_the_import_function(resources):
    imports = resources["ImportsBucket"]
    (notification,) = imports["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Function"] == {"Fn::GetAtt": ["ImportCsv", "Arn"]}
    assert notification["Event"] == "s3:ObjectCreated:*"
    permission = resources["ImportCsvInvokePermission"]["Properties"]
    assert permission["Principal"] == "s3.amazonaws.com"
    assert permission["SourceArn"]["Fn::Sub"].endswith(imports["Properties"]["BucketName"]["Fn::Sub"])
    assert "ImportCsvInvokePermission" in imports["DependsOn"]  # S3 checks it can invoke when configured


def test_every_function_knows_the_buckets_and_is_traced(template, resources):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CHIIKI_IMPORTS_BUCKET"] == resources["ImportsBucket"]["Properties"]["BucketName"]
    assert variables["CHIIKI_REPORTS_BUCKET"] == resources["ReportsBucket"]["Properties"]["BucketName"]
    assert variables["CHIIKI_ANCHORS_BUCKET"] == resources["AnchorsBucket"]["Properties"]["BucketName"]
    assert variables["CHIIKI_STAGE"] == {"Ref": "Stage"}
    for name, function in of_type(resources, "AWS::Serverless::Function").items():
        assert function["Properties"]["Tracing"] == "Active", name
        own = function["Properties"]["Environment"]["Variables"]
        assert not {"CHIIKI_IMPORTS_BUCKET", "CHIIKI_REPORTS_BUCKET", "CHIIKI_ANCHORS_BUCKET"} & set(own), name
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True


def _statements(resources: dict) -> list[dict]:
    found = []
    for role in of_type(resources, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            found.extend(policy["PolicyDocument"]["Statement"])
    return found


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _role_statements(resources: dict) -> dict[str, list[dict]]:
    """Each function's role's statements, by the function's name in .chalice/config.json."""
    names = {"APIHandler": iam_policies.API}
    names |= {"".join(part.title() for part in f.split("-")): f
              for f in iam_policies.FUNCTIONS if f != iam_policies.API}
    roles = {}
    for logical, function in of_type(resources, "AWS::Serverless::Function").items():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        roles[names.get(logical, logical)] = [
            s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    return roles


def _actions(statements: list[dict]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


def _resources_of(statements: list[dict], action: str) -> set[str]:
    return {r for s in statements if action in _as_list(s["Action"]) for r in _as_list(s["Resource"])}


BASE = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "cloudwatch:PutMetricData",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LEDGER = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable",
          "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}
READS = {"s3:GetObject", "s3:GetObjectVersion"}
# What each function kind may do, and nothing more. A new function kind needs a line
# here, an entry in tools/iam_policies.py and its iam_policy_file in .chalice/config.json.
EXPECTED_ACTIONS = {
    "api_handler": BASE | LEDGER | {"dynamodb:DeleteItem", "ses:SendEmail", "secretsmanager:GetSecretValue",
                                    "s3:ListBucket", "sqs:SendMessage"} | READS,
    "send-mail": BASE | {"ses:SendEmail", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    "expire-points": BASE | LEDGER,
    "grant-rebates": BASE | LEDGER,
    "grant-campaigns": BASE | LEDGER,
    "sweep-dormant": BASE | LEDGER | {"dynamodb:DeleteItem"},
    "send-reminders": BASE | LEDGER | {"dynamodb:DeleteItem", "ses:SendEmail"},
    "write-reports": BASE | {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable",
                             "s3:PutObject", "s3:ListBucket"} | READS,
    "audit-chains": BASE | {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable",
                            "dynamodb:Scan", "dynamodb:PutItem", "s3:PutObject", "s3:ListBucket",
                            "s3:ListBucketVersions"} | READS,
    "import-csv": BASE | LEDGER | {"dynamodb:DeleteItem", "s3:PutObject", "s3:ListBucket"} | READS,
}


def test_every_function_has_its_own_role_with_only_what_it_uses(resources):
    roles = _role_statements(resources)
    assert set(roles) == set(EXPECTED_ACTIONS)  # a new function kind needs its own policy (tools/iam_policies.py)
    functions = of_type(resources, "AWS::Serverless::Function").values()
    assert len({json.dumps(f["Properties"]["Role"]) for f in functions}) == len(roles)  # none shared
    for name, statements in roles.items():
        assert _actions(statements) == EXPECTED_ACTIONS[name], name
        assert not [a for a in _actions(statements) if "*" in a], name


def test_who_may_touch_the_secret_the_anchors_and_the_report_files(resources):
    roles = _role_statements(resources)
    account = "${aws:PrincipalAccount}"
    reports, anchors = (f"arn:aws:s3:::chiiki-points-{STAGE}-{kind}-{account}" for kind in ("reports", "anchors"))
    secret = f"arn:aws:secretsmanager:*:*:secret:chiiki-points/{STAGE}-??????"
    for name, statements in roles.items():
        writes = _resources_of(statements, "s3:PutObject")
        # Only the audit writes anchors; the API writes no bucket at all.
        assert all(not w.startswith(anchors) for w in writes) or name == "audit-chains", name
        if name == "api_handler":
            assert writes == set()
        # Only the API reads the stage secret, and only that secret.
        assert _resources_of(statements, "secretsmanager:GetSecretValue") == ({secret} if name == "api_handler"
                                                                              else set()), name
        # Only the audit scans the table.
        assert ("dynamodb:Scan" in _actions(statements)) == (name == "audit-chains"), name
    audit = roles["audit-chains"]
    # The day files and (issue 14) the per-shard files the daily audit builds them from.
    assert _resources_of(audit, "s3:PutObject") == {f"{anchors}/anchors/*", f"{anchors}/anchor-shards/*"}
    assert _resources_of(audit, "s3:GetObjectVersion") == {f"{anchors}/anchors/*", f"{anchors}/anchor-shards/*"}
    assert not any(reports in r for r in _resources_of(audit, "s3:GetObject"))
    assert _resources_of(roles["write-reports"], "s3:PutObject") == {f"{reports}/reports/*"}
    imports = f"arn:aws:s3:::chiiki-points-{STAGE}-imports-{account}"
    assert _resources_of(roles["import-csv"], "s3:PutObject") == {f"{imports}/_continue/*",
                                                                  f"{reports}/import-results/*"}
    table = f"arn:aws:dynamodb:*:*:table/chiiki-points-{STAGE}"
    assert _resources_of(roles["expire-points"], "dynamodb:Query") == {table, f"{table}/index/by-expiry"}
    assert _resources_of(roles["grant-rebates"], "dynamodb:Query") == {table}


def test_no_wildcard_actions_and_data_access_names_its_resources(resources):
    statements = _statements(resources)
    assert statements
    for statement in statements:
        for action in _as_list(statement["Action"]):
            assert "*" not in action, statement
            service = action.split(":")[0]
            if service in ("dynamodb", "s3", "ses", "secretsmanager"):
                for resource in _as_list(statement["Resource"]):
                    assert resource != "*", statement
    metrics = [s for s in statements if "cloudwatch:PutMetricData" in _as_list(s["Action"])]
    assert all(s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ChiikiPoints"}} for s in metrics)
    # The buckets' names carry the account id; IAM fills in the function's own account.
    bucket_name = resources["ImportsBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    expected = bucket_name.replace("${Stage}", STAGE).replace("${AWS::AccountId}", "${aws:PrincipalAccount}")
    assert f"arn:aws:s3:::{expected}/*" in _resources_of(_role_statements(resources)["import-csv"], "s3:GetObject")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_policy_files_and_the_config_agree(stage):
    assert iam_policies.main(["--check"]) == 0  # every file as tools/iam_policies.py writes it
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False and config["stages"][stage]["iam_policy_file"] == f"policy-{stage}.json"
    own = config["stages"][stage]["lambda_functions"]
    for function in iam_policies.FUNCTIONS:
        if function != iam_policies.API:
            assert own[function]["iam_policy_file"] == iam_policies.policy_file(stage, function), function
    policy = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
    table = config["stages"][stage]["environment_variables"]["CHIIKI_TABLE"]
    assert table == f"chiiki-points-{stage}"
    assert all(table in r for s in policy["Statement"] if s["Sid"] == "Ledger" for r in s["Resource"])
    mail_domain = config["stages"][stage]["environment_variables"]["CHIIKI_MAIL_FROM"].split("@")[1]
    (mail,) = [s for s in policy["Statement"] if s["Sid"] == "Mail"]
    assert mail["Resource"].endswith(f":identity/{mail_domain}")
    infra = json.loads((ROOT / "infra" / "template.json").read_text())
    assert infra["Parameters"]["MailDomain"]["Default"] == mail_domain == iam_policies.MAIL_DOMAIN


def test_mypage_mail_goes_through_a_queue_with_a_dead_letter_queue_and_its_alarm(template, resources):
    from chalicelib.settings import Settings

    queue, dead = resources["MailQueue"]["Properties"], resources["MailDeadLetterQueue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": "chiiki-points-${Stage}-mail"}
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["MailDeadLetterQueue", "Arn"]}
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    assert queue["SqsManagedSseEnabled"] and dead["SqsManagedSseEnabled"]  # addresses and codes, at rest
    # A standard queue's message keeps its first enqueue time in the dead-letter queue.
    assert dead["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]

    function = resources["SendMail"]["Properties"]
    (source,) = function["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::Sub": "${MailQueue.Arn}"}  # not Chalice's fixed name
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["BatchSize"] == Settings.mail_batch_size
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]  # AWS's advice for Lambda consumers
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CHIIKI_MAIL_QUEUE_URL"] == {"Ref": "MailQueue"}

    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    flat = [m for alarm in alarms.values() for m in _alarm_metrics(alarm)]
    dead_name = {"QueueName": {"Fn::GetAtt": ["MailDeadLetterQueue", "QueueName"]}}
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dead_name) in flat
    queue_name = {"QueueName": {"Fn::GetAtt": ["MailQueue", "QueueName"]}}
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue_name) in flat

    statements = _statements(resources)
    queue_arn = f"arn:aws:sqs:*:*:chiiki-points-{STAGE}-mail"
    for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        granted = [r for s in statements if action in _as_list(s["Action"]) for r in _as_list(s["Resource"])]
        assert granted and set(granted) == {queue_arn}, action


def test_refused_emoney_records_raise_an_alarm_whatever_the_reason(template, resources):
    """Issue 12 item 1: every reason the terminal API refuses a record for (chalicelib's
    RecordRefused subclasses) is summed by the records-refused alarm."""
    from chalicelib.terminals import errors

    alarm = resources["EmoneyRecordsRefusedAlarm"]["Properties"]
    watched = {dims["reason"] for ns, metric, dims in _alarm_metrics(resources["EmoneyRecordsRefusedAlarm"])
               if (ns, metric) == ("ChiikiPoints", "EmoneyRecordRefused")
               and {k: v for k, v in dims.items() if k != "reason"} == {"service": "chiiki-points",
                                                                          "stage": {"Ref": "Stage"}}}
    reasons = {cls.reason for cls in errors.RecordRefused.__subclasses__()}
    assert reasons == {"amount", "terminal_day", "card_day"} and watched == reasons
    (shown,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert all(f"FILL({q['Id']}, 0)" in shown["Expression"] for q in alarm["Metrics"] if "MetricStat" in q)
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert alarm["Threshold"] == {"Ref": "EmoneyRecordRefusedThreshold"}
    assert template["Parameters"]["EmoneyRecordRefusedThreshold"]["Default"] == 1
