"""The stage secret is read from Secrets Manager (moto) at run time, once per container
per max age, and never put in the environment; the API believes CloudFront's address
only with the origin key read from it; the jobs never read it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from chalicelib import services
from chalicelib.settings import MissingSecret, get_settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "chiiki-points/test"
VALUES = {"secret_key": "the-session-key-from-secrets-manager", "origin_key": "what-cloudfront-sends-from-sm"}


@pytest.fixture
def secret(aws):
    client = boto3.client("secretsmanager", region_name="ap-northeast-1")
    client.create_secret(Name=SECRET, SecretString=json.dumps(VALUES))
    return client


@pytest.fixture
def deployed(monkeypatch, secret):
    """Settings as a deployed stage has them: the secret's name, no plain values; and a
    count of GetSecretValue calls."""
    settings = replace(get_settings(), secret_key=None, origin_key=None, secret_id=SECRET)
    monkeypatch.setattr(services, "settings", lambda: settings)
    services.stage_secret.cache_clear()
    services._mypage.cache_clear()
    calls = []
    from chalicelib import aws_clients

    original = aws_clients.client  # what StageSecret builds its client with (botocore, no boto3)

    def counting_client(name, *args, **kwargs):
        client = original(name, *args, **kwargs)
        if name == "secretsmanager":
            client.meta.events.register("before-call.secrets-manager.GetSecretValue",
                                        lambda **_: calls.append(1))
        return client

    monkeypatch.setattr(aws_clients, "client", counting_client)
    yield SimpleNamespace(settings=settings, calls=calls)
    services.stage_secret.cache_clear()
    services._mypage.cache_clear()


def test_the_keys_come_from_secrets_manager_with_one_read_for_many_uses(deployed):
    assert services.stage_secret() is not None and deployed.calls == []  # built without calling AWS
    for _ in range(50):
        assert services.session_key() == VALUES["secret_key"].encode()
        assert services.origin_key() == VALUES["origin_key"].encode()
    assert len(deployed.calls) == 1


def test_a_rotated_secret_is_used_after_the_max_age(deployed, secret, monkeypatch):
    monkeypatch.setattr(services, "settings", lambda: replace(deployed.settings, secret_max_age_s=0))
    services.stage_secret.cache_clear()
    assert services.session_key() == VALUES["secret_key"].encode()
    secret.put_secret_value(SecretId=SECRET, SecretString=json.dumps({**VALUES, "secret_key": "rotated"}))
    assert services.session_key() == b"rotated"
    assert len(deployed.calls) == 2


def test_mypage_is_keyed_by_the_secret_and_rebuilt_when_it_changes(deployed, secret, monkeypatch, terminal_service):
    monkeypatch.setattr(services, "ledger", lambda: terminal_service.ledger)
    monkeypatch.setattr(services, "table", lambda: terminal_service.ledger.store.table)
    first = services.mypage()
    assert first.secret == VALUES["secret_key"].encode()
    assert services.mypage() is first
    monkeypatch.setattr(services, "settings", lambda: replace(deployed.settings, secret_max_age_s=0))
    services.stage_secret.cache_clear()
    secret.put_secret_value(SecretId=SECRET, SecretString=json.dumps({**VALUES, "secret_key": "rotated"}))
    assert services.mypage().secret == b"rotated"


def test_a_secret_without_its_session_key_is_refused(deployed, secret):
    secret.put_secret_value(SecretId=SECRET, SecretString=json.dumps({"origin_key": "x"}))
    with pytest.raises(MissingSecret, match="secret_key"):
        services.session_key()


class RecordingMyPage:
    """Stands in for MyPage at the login route: keeps the address the route believed."""

    def __init__(self) -> None:
        self.sources: list[str] = []

    def login(self, email: str, password: str, source_ip: str):
        self.sources.append(source_ip)
        return SimpleNamespace(cookie="c", csrf_token="t")


def test_the_api_believes_cloudfront_only_with_the_origin_key_read_from_the_secret(api, deployed, monkeypatch):
    recorder = RecordingMyPage()
    monkeypatch.setattr(services, "mypage", lambda: recorder)
    for n in range(10):
        key = VALUES["origin_key"] if n % 2 == 0 else "a-guess"
        response = api.http.post("/api/mypage/v1/login", headers={
            "Content-Type": "application/json", "CloudFront-Viewer-Address": f"198.51.100.{n}:443",
            "X-Chiiki-Origin": key,
        }, body=json.dumps({"email": "a@example.jp", "password": "x" * 10}))
        assert response.status_code == 200, response.body
    believed = [s for s in recorder.sources if s.startswith("198.51.100.")]
    assert believed == [f"198.51.100.{n}" for n in range(0, 10, 2)]
    assert len(deployed.calls) == 1  # one read for ten requests


def test_the_jobs_never_read_the_secret(deployed, monkeypatch, terminal_service):
    """The reminders and dormancy jobs use members and mail but not MyPage's key: their
    roles may not read the secret (infra), and they do not try."""
    from chalicelib import jobs

    monkeypatch.setattr(services, "ledger", lambda: terminal_service.ledger)
    monkeypatch.setattr(services, "table", lambda: terminal_service.ledger.store.table)
    services.members.cache_clear()
    try:
        jobs.daily_dormancy()
        jobs.daily_reminders()
    finally:
        services.members.cache_clear()
    assert deployed.calls == []


def test_a_deployed_function_has_only_the_secrets_name_in_its_environment():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    for stage, values in config["stages"].items():
        env = values["environment_variables"]
        assert env["CHIIKI_SECRET_ID"] == f"chiiki-points/{stage}"
        assert not {"CHIIKI_SECRET_KEY", "CHIIKI_ORIGIN_KEY"} & set(env), stage
    assert "resolve:secretsmanager" not in json.dumps(config)
