"""Fixtures for the contract tests: each store on moto and its in-memory fake.

The moto-backed stores come from tests/conftest.py's `store` fixture (the ledger's
CardStore on a fresh moto table, issuers `niimi` and `okayama`): the other stores are
built on its table, as the composition root builds them."""

from __future__ import annotations

import pytest

from chalicelib.ledger.domain import Issuer
from tests.fakes.ledger import FakeCardStore


@pytest.fixture
def fake_card_store() -> FakeCardStore:
    s = FakeCardStore()
    s.put_issuer(Issuer("niimi"))
    s.put_issuer(Issuer("okayama", point_name="おかやまポイント"))
    return s
