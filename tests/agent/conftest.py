"""Agent tests: the demo cards and terminals behind an in-process API (chalice.test.Client)."""

from __future__ import annotations

import pytest

from chalicelib.ledger.domain import Actor, Source

from .chalice_adapter import World

IDM, NUMBER = "0123456789abcdef", "JW123456789012345"
OKA_IDM = "00000000000000aa"


@pytest.fixture
def world(api, terminal_service, ledger, tmp_path):
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    ledger.open_card(idm=OKA_IDM, card_number="JW000000000000002", issuer_id="okayama")
    world = World(api, terminal_service, tmp_path)
    yield world
    world.close()
