"""Logs, metrics and traces around every function (chalicelib/observability.py): the
middleware runs for an HTTP route and for a scheduled function, log lines are JSON with a
correlation id and no personal data (app.py's own schedules and send-mail too: their jobs'
lines carry the invocation's id; a job run from the command line has a correlation id of
its own), the business metrics leave as CloudWatch EMF on stdout, and tracing stays off
outside Lambda."""

from __future__ import annotations

import json

import pytest
from chalice import Chalice, Cron
from chalice.test import Client

from chalicelib import observability
from chalicelib.ledger.domain import Actor, Source
from chalicelib.ledger_metrics import MeteredLedger
from chalicelib.reports.store import ledger_aggregates
from tests.terminals import SignedTerminal, new_key, register_demo

V1 = "/api/terminal/v1"
IDM, NUMBER = "0123456789abcdef", "JW123456789012345"


def emf(text: str) -> list[dict]:
    """The CloudWatch EMF documents among stdout's lines."""
    docs = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric_values(docs: list[dict]) -> dict[tuple[str, tuple], int]:
    """(metric name, its dimensions other than service and stage) -> value."""
    out: dict[tuple[str, tuple], int] = {}
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "ChiikiPoints"
        (dimension_names,) = directive["Dimensions"]
        assert {"service", "stage"} <= set(dimension_names)
        assert doc["service"] == "chiiki-points"
        extra = tuple(sorted((d, doc[d]) for d in dimension_names if d not in ("service", "stage")))
        for metric in directive["Metrics"]:
            value = doc[metric["Name"]]
            out[(metric["Name"], extra)] = out.get((metric["Name"], extra), 0) + sum(
                value if isinstance(value, list) else [value]
            )
    return out


# -- HTTP: the app's own routes ------------------------------------------------------


@pytest.fixture
def metered_api(store, clock, monkeypatch):
    """The app in-process with the observability middleware and a metered ledger on moto."""
    from datetime import UTC, datetime

    from app import app
    from chalicelib import services
    from chalicelib.rebates.service import Rebates
    from chalicelib.terminals.service import TerminalService
    from chalicelib.terminals.store import TerminalStore

    # app.py installs it for every kind of function (HTTP, schedules, the import function).
    assert (observability.observe, "all") in list(app.middleware_handlers)
    clock.now = datetime.now(UTC)  # signatures carry the real time
    ledger = MeteredLedger(store, clock=clock, extra_writes=ledger_aggregates)
    terminals = TerminalService(ledger, TerminalStore(store.table), clock=clock, rebates=Rebates.on_table(store.table))
    monkeypatch.setattr(services, "ledger", lambda: ledger)
    monkeypatch.setattr(services, "terminals", lambda: terminals)
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    with Client(app) as client:
        yield client, ledger, register_demo(terminals, client)


def test_an_http_route_logs_json_with_its_request_id_and_emits_its_metrics(metered_api, log_lines, capsys):
    client, ledger, tills = metered_api
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    capsys.readouterr()  # only what the requests below print

    status, body = tills["store"].post(f"{V1}/point-payments", {"request_id": "p1", "idm": IDM, "amount": 1200})
    assert (status, body["spent"]) == (200, 1200)
    status, body = tills["event"].post(f"{V1}/checkins", {"request_id": "c1", "idm": IDM})
    assert (status, body["granted"]) == (200, 500)

    out = capsys.readouterr().out
    metrics = metric_values(emf(out))
    assert metrics[("PointsSpent", ())] == 1200
    assert metrics[("PointsGranted", (("source", "event"),))] == 500
    lines = log_lines()
    invocations = [line for line in lines if line["message"] == "invocation"]
    assert [line["route"] for line in invocations] == [
        f"POST {V1}/point-payments", f"POST {V1}/checkins"]
    for line in invocations:
        assert line["service"] == "chiiki-points" and line["level"] == "INFO"
        assert line["correlation_id"] and line["correlation_id"] == line["function_request_id"]  # local: no API GW id
        assert line["outcome"] == "200"
    assert invocations[0]["correlation_id"] != invocations[1]["correlation_id"]
    for secret in (IDM, NUMBER):
        assert secret not in out and secret not in json.dumps(lines)
    # The invocation's keys do not leak into lines logged outside an invocation.
    observability.logger().info("after")
    assert "correlation_id" not in log_lines()[-1]


def test_a_rejected_signature_is_counted_and_logged_with_its_code(metered_api, log_lines, capsys):
    client, _, tills = metered_api
    capsys.readouterr()
    unsigned = client.http.post(f"{V1}/balance", headers={"Content-Type": "application/json"},
                                body=json.dumps({"idm": IDM}))
    assert unsigned.status_code == 401
    metrics = metric_values(emf(capsys.readouterr().out))
    assert metrics == {("SignatureRejected", ()): 1}
    (line,) = [line for line in log_lines() if line["message"] == "signature rejected"]
    assert line["code"] and line["correlation_id"] and line["route"] == f"POST {V1}/balance"
    assert "terminal" not in line  # nothing claimed (Powertools leaves out empty keys)
    assert IDM not in json.dumps(line)


def test_a_rejected_signature_names_the_terminal_the_request_claimed(metered_api, log_lines):
    """What the runbook's answer to the rejections alarm needs: which device to look at."""
    client, _, tills = metered_api
    store = tills["store"]
    replayed = store.prepare(f"{V1}/balance", {"idm": IDM})
    assert store.send(replayed)[0] == 200
    forged = SignedTerminal(client, "T-STORE2", new_key()).prepare(f"{V1}/balance", {"idm": IDM})
    assert [store.send(replayed)[0], store.send(forged)[0]] == [401, 401]
    rejected = [line for line in log_lines() if line["message"] == "signature rejected"]
    assert [(line["code"], line["terminal"]) for line in rejected] == [
        ("nonce_reused", "T-STORE"), ("bad_signature", "T-STORE2")]


@pytest.mark.parametrize("value, claimed", [
    ('sig1=("@method");created=1;keyid="T-1";alg="ed25519"', "T-1"),
    ('sig1=("@method");keyid="' + "X" * 300 + '"', "X" * 64),  # a log line stays short
    ('sig1=("@method");keyid=7', None),
    ('sig1=("@method");keyid="T-1", sig2=("@path");keyid="T-2"', None),  # which one?
    ("not a structured field ((", None),
])
def test_the_claimed_terminal_is_read_from_signature_input_or_not_at_all(value, claimed):
    from chalicelib.terminals.signatures import claimed_key_id

    assert claimed_key_id({"Signature-Input": value}) == claimed
    assert claimed_key_id({"Content-Type": "application/json"}) is None


def test_the_api_gateway_request_id_is_the_correlation_id(log_lines):
    """Behind API Gateway the request's own id (what API Gateway logs) correlates the lines."""
    from chalice.app import Request

    class Context:
        function_name, aws_request_id = "chiiki-points-prod-APIHandler", "lambda-request-1"

    event = {"requestContext": {"requestId": "apigw-request-1", "httpMethod": "GET",
                                "resourcePath": "/api/health"},
             "headers": {}, "multiValueQueryStringParameters": None, "pathParameters": None,
             "stageVariables": None, "body": None, "isBase64Encoded": False}
    request = Request(event, Context())

    def view(req):
        observability.logger().info("inside")
        return "ok"

    assert observability.observe(request, view) == "ok"
    inside, done = log_lines()[-2:]
    assert inside["message"] == "inside" and done["message"] == "invocation"
    assert inside["correlation_id"] == done["correlation_id"] == "apigw-request-1"
    assert inside["function_request_id"] == "lambda-request-1"


# -- schedules, S3 events and pure Lambda functions ----------------------------------


@pytest.fixture
def jobs_app(store, clock):
    """A Chalice app with one function of each non-HTTP kind, as app.py registers them
    (a fresh app: its handlers build their middleware chain on first call)."""
    from chalicelib.ledger.domain import Issuer

    ledger = MeteredLedger(store, clock=clock, extra_writes=ledger_aggregates)
    store.put_issuer(Issuer("niimi"))
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    ledger.grant(IDM, 300, request_id="g1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    app = Chalice(app_name="chiiki-points")
    seen: list[str] = []

    @app.schedule(Cron(5, 15, "*", "*", "?", "*"), name="expire-points")
    def expire_points(event):
        observability.logger().info("job ran")
        clock.advance(days=200)
        seen.append("schedule")
        ledger.expire_due(IDM, on=ledger.today("niimi"), request_id="expire:1", actor=Actor("job", "expiry"))
        ledger.grant(IDM, 73, request_id="rebate:1", actor=Actor("job", "rebate"), source=Source.REBATE)

    @app.on_s3_event(bucket="chiiki-points-dev-imports-123456789012")
    def on_import(event):
        seen.append(f"s3 {event.key}")
        observability.logger().info("import seen")

    @app.lambda_function(name="import-csv")
    def import_csv(event, context):
        seen.append("lambda")
        raise RuntimeError("the import failed")

    observability.register(app)
    return app, seen


def test_a_scheduled_function_runs_inside_the_middleware(jobs_app, log_lines, capsys):
    app, seen = jobs_app
    capsys.readouterr()
    with Client(app) as client:
        client.lambda_.invoke("expire-points", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert seen == ["schedule"]
    metrics = metric_values(emf(capsys.readouterr().out))
    assert metrics == {
        ("PointsExpired", ()): 300,
        ("RebatesGranted", ()): 1,
        ("PointsGranted", (("source", "rebate"),)): 73,
    }
    ran, done = [line for line in log_lines() if line["message"] in ("job ran", "invocation")]
    assert ran["function_name"] == done["function_name"] == "expire-points"
    assert ran["correlation_id"] == done["correlation_id"] == done["function_request_id"]
    assert done["cold_start"] in (True, False) and done["outcome"] == "ok"


def test_s3_events_and_pure_lambda_functions_run_inside_it_too(jobs_app, log_lines, capsys):
    app, seen = jobs_app
    with Client(app) as client:
        client.lambda_.invoke("on_import", client.events.generate_s3_event(
            bucket="chiiki-points-dev-imports-123456789012", key="cards/2024-04.csv"))
        with pytest.raises(RuntimeError):
            client.lambda_.invoke("import-csv", {"Records": []})
    assert seen == ["s3 cards/2024-04.csv", "lambda"]
    lines = [line for line in log_lines() if line["message"] in ("import seen", "invocation")]
    assert [(line["message"], line.get("outcome")) for line in lines] == [
        ("import seen", None), ("invocation", "ok"), ("invocation", "error")]
    assert all(line["correlation_id"] for line in lines)
    assert emf(capsys.readouterr().out) == []  # nothing counted, nothing flushed


# -- app.py's own schedules and send-mail: the jobs' lines carry the invocation's id -----

SCHEDULED = {
    "expire-points": "expiry done",
    "grant-rebates": "rebate done",
    "grant-campaigns": "campaigns done",
    "sweep-dormant": "dormancy done",
    "send-reminders": "reminders done",
}


@pytest.mark.parametrize(("function", "message"), SCHEDULED.items())
def test_the_real_schedules_log_through_powertools_with_the_correlation_id(
    api, mypage_service, monkeypatch, log_lines, function, message
):
    from chalicelib import services
    from chalicelib.mypage.members import Members

    monkeypatch.setattr(services, "members", lambda: Members(mypage_service.store))  # the jobs' members, on moto
    api.lambda_.invoke(function, api.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    lines = log_lines()
    (done,) = [line for line in lines if line["message"] == "invocation"]
    assert done["function_name"] == function and done["outcome"] == "ok"
    job_lines = [line for line in lines if line["message"] == message]
    assert sorted(line["issuer"] for line in job_lines) == ["niimi", "okayama"]  # one per issuer
    for line in job_lines:
        assert line["service"] == "chiiki-points"
        assert line["correlation_id"] == done["correlation_id"] == done["function_request_id"]
        assert line["function_name"] == function


def test_send_mail_logs_a_mail_not_sent_with_the_correlation_id(api, log_lines):
    event = api.events.generate_sqs_event(message_bodies=["not a queued mail"], queue_name="mail")
    answer = api.lambda_.invoke("send-mail", event).payload
    assert len(answer["batchItemFailures"]) == 1
    lines = log_lines()
    (done,) = [line for line in lines if line["message"] == "invocation"]
    (failed,) = [line for line in lines if line["message"] == "mail not sent"]
    assert failed["level"] == "WARNING" and failed["error"] == "JSONDecodeError"
    assert failed["correlation_id"] == done["correlation_id"] and failed["function_name"] == "send-mail"


# -- jobs run from the command line: a correlation id of their own, on stderr ------------


def test_the_reports_cli_logs_through_powertools_with_a_correlation_id(ledger, store, monkeypatch, log_lines,
                                                                       capsys):
    import boto3

    from chalicelib import services
    from chalicelib.reports.__main__ import main as cli
    from chalicelib.reports.store import ReportStore

    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    ledger.grant(IDM, 300, request_id="g1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    s3 = boto3.client("s3", region_name="ap-northeast-1")
    monkeypatch.setattr(services, "ledger", lambda: ledger)
    report_store = ReportStore(store.table, s3, "unused", anchors_bucket="unused")  # no anchor: no S3 call
    monkeypatch.setattr(services, "report_store", lambda: report_store)
    capsys.readouterr()

    assert cli(["audit", "--issuer", "niimi", "--no-anchor"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"]  # stdout is the command's answer only
    lines = log_lines()
    (audited,) = [line for line in lines if line["message"] == "audit done"]
    (done,) = [line for line in lines if line["message"] == "invocation"]
    assert done["outcome"] == "ok" and done["function_name"] == audited["function_name"] == "chalicelib.reports audit"
    assert audited["correlation_id"] and audited["correlation_id"] == done["correlation_id"]
    assert audited["service"] == "chiiki-points"
    assert [json.loads(line)["message"] for line in err.splitlines()] == ["audit done", "invocation"]  # on stderr
    assert "correlation_id" not in observability.logger().get_current_keys()  # removed when it ends


@pytest.mark.parametrize(("job", "message"), [("daily_expiry", "expiry done"), ("daily_dormancy", "dormancy done")])
def test_a_real_schedule_function_run_from_the_command_line_logs_with_its_correlation_id(
    api, mypage_service, monkeypatch, log_lines, job, message
):
    """What `python -m localdev.jobs <job>` does around each job."""
    from chalicelib import jobs, services
    from chalicelib.mypage.members import Members

    monkeypatch.setattr(services, "members", lambda: Members(mypage_service.store))  # the jobs' members, on moto
    with observability.command(f"localdev.jobs {job}") as correlation_id:
        getattr(jobs, job)()
    lines = log_lines()
    job_lines = [line for line in lines if line["message"] == message]
    assert sorted(line["issuer"] for line in job_lines) == ["niimi", "okayama"]  # one per issuer
    (done,) = [line for line in lines if line["message"] == "invocation"]
    for line in [*job_lines, done]:
        assert line["correlation_id"] == correlation_id and line["function_name"] == f"localdev.jobs {job}"


def test_nothing_is_counted_outside_an_invocation(capsys):
    observability.count(observability.POINTS_SPENT, 100)
    assert emf(capsys.readouterr().out) == []


def test_tracing_is_off_outside_lambda():
    assert observability.tracer().disabled


FIRST_REQUEST = """\
import json, sys
import app
event = {"resource": "/api/health", "path": "/api/health", "httpMethod": "GET", "headers": {},
         "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
         "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": "/api/health", "httpMethod": "GET", "path": "/api/health",
                            "requestId": "first-request", "stage": "api", "identity": {"sourceIp": "203.0.113.7"}}}
class Context:
    function_name = "chiiki-points-dev"
    aws_request_id = "first-request"
response = app.app(event, Context())
print(json.dumps({"status": response["statusCode"], "xray": "aws_xray_sdk" in sys.modules}))
"""


@pytest.mark.parametrize("in_lambda", [False, True], ids=["tracing off", "in Lambda, tracing on"])
def test_the_api_functions_first_request_imports_no_xray_sdk(in_lambda):
    """A fresh process serving its first HTTP request never imports the X-Ray SDK (seconds
    of a cold start): off outside Lambda, and in Lambda the API is traced by Lambda's active
    tracing and API Gateway, not by the SDK."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items()
           if k not in ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME")}
    env.update(AWS_DEFAULT_REGION="ap-northeast-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    if in_lambda:
        env.update(LAMBDA_TASK_ROOT="/var/task", AWS_LAMBDA_FUNCTION_NAME="chiiki-points-dev")
    out = subprocess.run([sys.executable, "-c", FIRST_REQUEST], cwd=Path(__file__).resolve().parents[2], env=env,
                         capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer == {"status": 200, "xray": False}


def test_tracing_is_on_only_inside_lambda_and_not_disabled(monkeypatch):
    for name in ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    assert not observability.tracing_on()
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    assert observability.tracing_on()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not observability.tracing_on()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "0")
    monkeypatch.setenv("AWS_CHALICE_CLI_MODE", "true")
    assert not observability.tracing_on()
