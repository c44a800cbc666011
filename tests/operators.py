"""Helpers for admin API tests: an operator's identity in API Gateway's request context,
and a stand-in for API Gateway that checks SigV4 signatures before passing requests on.

Chalice's test client (like `chalice local`) checks no IAM and puts no principal in the
request context; `with_identity` makes it put the ARN a test sends in a test-only header,
as API Gateway puts the principal it authorized."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ARN = "arn:aws:iam::123456789012:user/ops-tanaka"
OTHER_ARN = "arn:aws:sts::123456789012:assumed-role/Operators/suzuki"
ARN_HEADER = "x-test-user-arn"
PREFIX = "/api/admin/v1/issuers"


@pytest.fixture
def with_identity(monkeypatch):
    """Chalice's local gateway puts the test's ARN header into requestContext.identity."""
    from chalice.local import LambdaEventConverter

    original = LambdaEventConverter.create_lambda_event

    def create(self, method, path, headers, body=None):
        event = original(self, method, path, headers, body)
        arn = event["headers"].pop(ARN_HEADER, None)
        if arn:
            event["requestContext"]["identity"]["userArn"] = arn
        return event

    monkeypatch.setattr(LambdaEventConverter, "create_lambda_event", create)


@pytest.fixture
def operators(terminal_service, mypage_service, monkeypatch):
    """The operators' service on the test table, served by services.operators()."""
    from chalicelib import services
    from chalicelib.campaigns.service import Campaigns
    from chalicelib.campaigns.store import CampaignStore
    from chalicelib.job_progress import JobState
    from chalicelib.mypage.members import Members
    from chalicelib.operators.service import Operators
    from chalicelib.reconciliation.service import Reconciliation
    from chalicelib.reconciliation.store import ReconciliationStore

    ledger = terminal_service.ledger
    ops = Operators(ledger, terminal_service, Members(mypage_service.store), Campaigns(ledger, CampaignStore()),
                    mailer=lambda: mypage_service.mailer, job_state=JobState(),
                    reconciliation=Reconciliation(ledger, ReconciliationStore(), terminal_service))
    monkeypatch.setattr(services, "operators", lambda: ops)
    return ops


class AdminClient:
    """Calls the admin API of a chalice.test.Client as an IAM principal."""

    def __init__(self, client, issuer: str = "niimi", arn: str | None = ARN) -> None:
        self.client = client
        self.issuer = issuer
        self.arn = arn

    def call(self, method: str, path: str, body: dict | None = None, *, arn: object = ..., issuer: str | None = None):
        """`arn=None` sends no principal (as `chalice local` and a misrouted call would)."""
        arn = self.arn if arn is ... else arn
        headers = {"content-type": "application/json"}
        if arn:
            headers[ARN_HEADER] = arn
        raw = json.dumps(body).encode() if body is not None else b""
        response = self.client.http.request(method, f"{PREFIX}/{issuer or self.issuer}{path}", headers=headers,
                                            body=raw)
        return response.status_code, json.loads(response.body or b"null")

    def post(self, path: str, body: dict | None = None, **kw):
        return self.call("POST", path, body, **kw)

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)


# -- a stand-in for API Gateway's IAM authorization -----------------------------------------


SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def sigv4_problem(method: str, url: str, headers: dict[str, str], body: bytes, credentials, region: str) -> str | None:
    """Why the request's SigV4 signature is not what botocore computes for these
    credentials (None when it is): the check API Gateway makes, done by botocore."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    lower = {k.lower(): v for k, v in headers.items()}
    match = SIGV4.match(lower.get("authorization", ""))
    if not match:
        return "no SigV4 Authorization header"
    if match["service"] != "execute-api" or match["region"] != region:
        return f"signed for {match['service']} in {match['region']}"
    if match["key"] != credentials.access_key:
        return "signed with other credentials"
    signed = match["signed"].split(";")
    request = AWSRequest(method=method, url=url, data=body, headers={k: lower[k] for k in signed if k in lower})
    request.context["timestamp"] = lower.get("x-amz-date", "")
    auth = SigV4Auth(credentials, "execute-api", region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return None if expected == match["signature"] else "the signature does not match"


class FakeGateway:
    """An HTTP server on 127.0.0.1 that, like API Gateway with IAM authorization, checks
    each request's SigV4 signature, then passes it (with its Content-Type and Accept) to
    the app with the principal in the request context (or answers 403 as API Gateway
    does), and answers with the app's status, body, Content-Type and Content-Disposition.
    It records what it received."""

    def __init__(self, client, credentials, region: str, arn: str = ARN) -> None:
        self.client, self.credentials, self.region, self.arn = client, credentials, region, arn
        self.received: list[dict] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                gateway.handle(self)

            def do_POST(self):  # noqa: N802
                gateway.handle(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        headers = dict(h.headers.items())
        problem = sigv4_problem(h.command, self.url + h.path, headers, body, self.credentials, self.region)
        with self.lock:
            self.received.append({"method": h.command, "path": h.path, "headers": headers, "problem": problem})
            answer_headers = {"content-type": "application/json"}
            if problem:
                status, raw = 403, json.dumps({"message": f"Forbidden: {problem}"}).encode()
            else:
                forwarded = {name: value for name in ("content-type", "accept") if (value := h.headers.get(name))}
                response = self.client.http.request(h.command, h.path, headers={**forwarded, ARN_HEADER: self.arn},
                                                    body=body)
                status, raw = response.status_code, response.body
                answer_headers |= {k.lower(): v for k, v in response.headers.items()}
        h.send_response(status)
        for name in ("content-type", "content-disposition"):  # of the app's headers, the ones the CLI reads
            if name in answer_headers:
                h.send_header(name, answer_headers[name])
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)


@contextmanager
def fake_gateway(client, credentials, region: str = "ap-northeast-1") -> Iterator[FakeGateway]:
    gateway = FakeGateway(client, credentials, region)
    # shutdown() waits for the serve loop's next poll: 0.5 s by default, at every test's end
    thread = threading.Thread(target=gateway.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        gateway.server.shutdown()
        gateway.server.server_close()
