"""Settings are read from the environment on first use; a deployed function never runs
on the local development secret."""

import pytest

from chalicelib import settings


@pytest.fixture(autouse=True)
def fresh():
    settings.get_settings.cache_clear()
    yield
    settings.get_settings.cache_clear()


def test_a_lambda_without_its_secret_refuses_to_start(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiiki-points-prod")
    monkeypatch.delenv("CHIIKI_SECRET_KEY", raising=False)
    with pytest.raises(settings.MissingSecret):
        settings.get_settings()


def test_the_secret_and_table_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiiki-points-prod")
    monkeypatch.setenv("CHIIKI_SECRET_KEY", "s3cret")
    monkeypatch.setenv("CHIIKI_TABLE", "chiiki-points-prod")
    s = settings.get_settings()
    assert (s.secret_key, s.table_name, s.secure_cookies) == (b"s3cret", "chiiki-points-prod", True)


def test_reconciliation_is_required_by_default_in_a_deployed_stage_only(monkeypatch):
    import json
    from pathlib import Path

    from chalicelib.ledger.domain import Issuer

    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    for stage in ("dev", "prod"):
        assert config["stages"][stage]["environment_variables"]["CHIIKI_RECONCILIATION"] == "required"
    # A deployed function with its stage's environment: on.
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiiki-points-prod-grant-rebates")
    monkeypatch.setenv("CHIIKI_SECRET_KEY", "s3cret")
    monkeypatch.setenv("CHIIKI_RECONCILIATION", "required")
    assert settings.get_settings().reconciliation is True
    # `chalice local` under `make run` gets the dev stage's environment, but is no Lambda: off.
    settings.get_settings.cache_clear()
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert settings.get_settings().reconciliation is False
    # An issuer's own setting wins over the stage's default, either way.
    assert Issuer("niimi").requires_reconciliation(True) is True
    assert Issuer("niimi", reconciliation=False).requires_reconciliation(True) is False
    assert Issuer("niimi", reconciliation=True).requires_reconciliation(False) is True
    assert Issuer("niimi").requires_reconciliation(False) is False
