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


def test_the_mail_queue_comes_from_the_environment_with_local_defaults(monkeypatch):
    for name in ("CHIIKI_MAIL_QUEUE", "CHIIKI_MAIL_QUEUE_URL", "CHIIKI_SQS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    local = settings.get_settings()
    assert (local.mail_queue, local.mail_queue_url, local.sqs_endpoint) == ("chiiki-points-mail", None, None)
    settings.get_settings.cache_clear()
    url = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/chiiki-points-prod-mail"
    monkeypatch.setenv("CHIIKI_MAIL_QUEUE_URL", url)  # infra/template.json: Ref MailQueue
    assert settings.get_settings().mail_queue_url == url


def test_a_deployed_function_knows_only_the_secrets_name(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiiki-points-prod")
    monkeypatch.delenv("CHIIKI_SECRET_KEY", raising=False)
    monkeypatch.delenv("CHIIKI_ORIGIN_KEY", raising=False)
    monkeypatch.setenv("CHIIKI_SECRET_ID", "chiiki-points/prod")
    s = settings.get_settings()  # reads no secret: services.session_key() does, on first use
    assert (s.secret_key, s.origin_key, s.secret_id, s.secret_max_age_s) == (None, None, "chiiki-points/prod", 300.0)


def test_locally_the_plain_values_or_the_development_secret_are_used(monkeypatch):
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "CHIIKI_SECRET_KEY", "CHIIKI_SECRET_ID", "CHIIKI_ORIGIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert settings.get_settings().secret_key == settings.LOCAL_SECRET.encode()
    settings.get_settings.cache_clear()
    monkeypatch.setenv("CHIIKI_SECRET_ID", "chiiki-points/dev")
    monkeypatch.setenv("CHIIKI_SECRET_KEY", "plain")
    assert settings.get_settings().secret_key == b"plain"  # a plain value wins over the secret


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
