"""The OpenAPI document the repo keeps: it is valid OpenAPI 3.1, it and the app name
the same routes, and schemathesis-generated requests never get a 5xx: on the terminal
API signed validly, on MyPage with a logged-in session and its CSRF token, on the admin
API as an IAM principal."""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from app import app
from chalicelib.ledger.domain import Actor, Source
from chalicelib.schemas import OPENAPI, document, parse
from tests.members import PASSWORD, sign_up
from tests.operators import ARN, ARN_HEADER, operators, with_identity  # noqa: F401  (fixtures)
from tests.terminals import register_demo

IDM = "0123456789abcdef"
# Examples per operation (about 50 operations): a minute or so on CI's 2 cores. A deeper
# hunt by hand: SCHEMATHESIS_EXAMPLES=500 pytest -p no:xdist tests/integration/test_openapi.py
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


def test_the_document_is_valid_openapi_3_1():
    validate(document())
    assert document()["openapi"].startswith("3.1")


def test_every_route_is_documented_and_every_documented_route_exists():
    served = {(path, method.lower()) for path, entry in app.routes.items() for method in entry}
    documented = {(path, method) for path, item in document()["paths"].items() for method in item}
    assert served == documented


SIGNER = {  # which demo terminal may call each terminal route
    "/api/terminal/v1/charges": "charger",
    "/api/terminal/v1/checkins": "event",
}
RESPONSE = {  # the documented 200 schema of each terminal route
    path: item["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    for path, item in document()["paths"].items()
    if path.startswith("/api/terminal/")
}
SCHEMA = schemathesis.openapi.from_path(str(OPENAPI))


@pytest.mark.parametrize("path", sorted(RESPONSE))
def test_generated_requests_never_get_a_server_error(path, api, terminal_service, ledger):
    ledger.open_card(idm=IDM, card_number="JW123456789012345", issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    tills = register_demo(terminal_service, api)
    till = tills[SIGNER.get(path, "store")]
    operation = SCHEMA[path]["POST"]
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @given(case=cases, known_card=st.booleans())
    @settings(max_examples=max(40, EXAMPLES), deadline=None, suppress_health_check=list(HealthCheck))
    def check(case, known_card):
        body = case.body
        if known_card and isinstance(body, dict) and "idm" in body:
            body = {**body, "idm": IDM}  # reach the ledger, not only "no such card"
        raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
        status, answer = till.post(path, raw)
        assert status < 500, (status, answer)
        if status == 200:
            parse(RESPONSE[path], json.dumps(answer).encode())  # the answer is what the document says
        else:
            assert set(answer) >= {"code", "message"}

    check()


# -- every other route: MyPage (with a session and its CSRF token) and admin (as an IAM principal) --


OTHER_ROUTES = sorted((path, method.upper()) for path, item in document()["paths"].items()
                      if not path.startswith("/api/terminal/") for method in item)


class Caller:
    """Sends schemathesis cases to the app as a resident's browser (session cookie and
    CSRF token, logged in again whenever a case logged it out) or as an operator (the
    IAM principal API Gateway would put in the request context). `known` puts the real
    issuer and the member's own card in the path, so cases reach past "not found"."""

    def __init__(self, api, mypage, email: str, card_id: str) -> None:
        self.api, self.mypage, self.email, self.card_id = api, mypage, email, card_id
        self.session = None

    def _logged_in(self):
        from chalicelib.mypage.errors import MyPageError

        if self.session is not None:
            try:
                self.mypage.authenticate(self.session.cookie)
                return self.session
            except MyPageError:
                pass
        self.session = self.mypage.login(self.email, PASSWORD, "203.0.113.7")
        return self.session

    def send(self, case, known: bool):
        from urllib.parse import urlencode

        from schemathesis.core import NOT_SET

        params = dict(case.path_parameters or {})
        if known:
            params.update({k: v for k, v in (("issuer_id", "niimi"), ("card_id", self.card_id)) if k in params})
        path = case.path.format(**params)
        if case.query:
            path += "?" + urlencode(case.query, doseq=True)
        headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
        if case.body is NOT_SET:
            raw = b""
        elif isinstance(case.body, bytes):  # negative cases: bytes that are not the media type
            raw = case.body
        elif isinstance(case.body, str) and case.media_type != "application/json":
            raw = case.body.encode()
        else:
            raw = json.dumps(case.body).encode()
        headers.setdefault("Content-Type", case.media_type or "application/json")
        if case.path.startswith("/api/mypage/"):
            session = self._logged_in()
            headers["Cookie"] = f"session={session.cookie}"
            if known:
                headers["X-CSRF-Token"] = session.csrf_token
        elif case.path.startswith("/api/admin/"):
            headers[ARN_HEADER] = ARN
        response = self.api.http.request(case.method.upper(), path, headers=headers, body=raw)
        try:
            answer = json.loads(response.body or b"null")
        except ValueError:
            answer = response.body[:200]
        return response.status_code, answer


@pytest.fixture(scope="module")
def world_items() -> dict:
    """The table's items once `caller` has opened the card, registered the demo terminals
    and signed the member up: the first test writes them, each later one (in this worker)
    starts from a copy of them in its own fresh table instead of writing them again."""
    return {}


@pytest.fixture
def caller(api, operators, with_identity, terminal_service, mypage_service, outbox, ledger, store,  # noqa: F811
           monkeypatch, dynamodb_key_limits, aws, world_items):
    from chalicelib import services
    from chalicelib.imports.service import Importer
    from chalicelib.imports.store import ImportFiles, RunStore

    if not world_items:
        ledger.open_card(idm=IDM, card_number="JW123456789012345", issuer_id="niimi", birth_date="1948-03-15")
        ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
        register_demo(terminal_service, api)
        sign_up(mypage_service, outbox, "hanako@example.jp", "JW123456789012345", "1948-03-15")
        world_items.update(aws.items())
    else:
        aws.put_items(world_items)
    s3 = aws.client("s3")
    settings_ = services.settings()
    for bucket in (settings_.imports_bucket, settings_.reports_bucket):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    monkeypatch.setattr(services, "s3", lambda: s3)
    monkeypatch.setattr(services, "table", lambda: store.table)
    files = ImportFiles(s3, settings_.imports_bucket, settings_.reports_bucket)
    importer = Importer(ledger, terminal_service, RunStore(store.table), files)
    monkeypatch.setattr(services, "importer", lambda: importer)
    caller = Caller(api, mypage_service, "hanako@example.jp", "")
    session = caller._logged_in()
    (card,) = mypage_service.cards(mypage_service.authenticate(session.cookie))
    caller.card_id = card["card_id"]
    return caller


@pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
@pytest.mark.parametrize(("path", "method"), OTHER_ROUTES)
def test_generated_requests_to_every_other_route_never_get_a_server_error(path, method, caller):
    operation = SCHEMA[path][method]
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @given(case=cases, known=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case, known):
        status, answer = caller.send(case, known)
        assert status < 500, (status, answer, case.method, case.path, case.path_parameters, case.query, case.body)
        if status >= 400 and isinstance(answer, dict) and "code" in answer:
            assert "message" in answer

    check()
