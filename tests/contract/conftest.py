"""Fixtures for the contract tests: each store on moto and its in-memory fake.

The moto-backed stores come from tests/conftest.py's `store` fixture (the ledger's
CardStore on a fresh moto table, issuers `niimi` and `okayama`): the other stores are
built on its table, as the composition root builds them."""

from __future__ import annotations

import pytest

from tests.fakes.ledger import FakeCardStore, with_test_issuers


@pytest.fixture
def fake_card_store() -> FakeCardStore:
    return with_test_issuers(FakeCardStore())
