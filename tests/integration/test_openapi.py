"""The OpenAPI document the repo keeps: it is valid OpenAPI 3.1, it and the app name
the same routes, and schemathesis-generated bodies, signed validly, never get a 5xx."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from app import app
from chalicelib.ledger.domain import Actor, Source
from chalicelib.schemas import OPENAPI, document, parse
from tests.terminals import register_demo

IDM = "0123456789abcdef"


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
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
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
