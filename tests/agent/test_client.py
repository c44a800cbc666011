"""The agent's HTTP client against the app in-process (chalice.test.Client on moto, through
a requests transport adapter): signed calls, safe retries, typed errors; and its config."""

from __future__ import annotations

import json
import re

import pytest
import requests
from requests.adapters import BaseAdapter

from chalicelib.ledger.domain import Actor, Source
from terminal_agent.agent import BALANCE, POINT_PAYMENTS
from terminal_agent.card import CardRead
from terminal_agent.client import ApiClient, ApiError, Offline
from terminal_agent.config import AgentConfig, ConfigError

from .chalice_adapter import World, session_for

IDM, NUMBER = "0123456789abcdef", "JW123456789012345"
CARD = CardRead(IDM, 1234, 41, None)


@pytest.fixture
def world(api, terminal_service, ledger, tmp_path):
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    world = World(api, terminal_service, tmp_path)
    yield world
    world.close()


def nonce_of(signature_input: str) -> str:
    return re.search(r'nonce="([^"]+)"', signature_input).group(1)


def test_signed_calls_succeed_each_with_its_own_nonce(world):
    client = world.client(world.config("store"))
    first = client.post(BALANCE, {"idm": IDM})
    second = client.post(BALANCE, {"idm": IDM})
    assert first["balance"] == second["balance"] == 5000
    assert [lot["points"] for lot in first["lots"]] == [5000]
    nonces = {nonce_of(s.signature_input) for s in world.adapter.sent}
    assert len(nonces) == 2


def test_a_lost_answer_is_retried_with_the_same_request_id_and_has_one_effect(world, ledger):
    agent = world.agent("store")
    world.adapter.lose_responses = 1  # the server spends, the answer never arrives
    result = agent.pay_points(CARD, 1200)
    assert (result["spent"], result["balance"]) == (1200, 3800)
    first, retry = world.adapter.delivered
    assert first.path == retry.path == POINT_PAYMENTS
    assert first.body == retry.body and first.body["request_id"] == result["request_id"]
    assert nonce_of(first.signature_input) != nonce_of(retry.signature_input)  # signed anew
    assert ledger.balance(IDM).balance == 3800
    assert ledger.card(IDM).seq == 2  # the grant and one spend
    assert world.sleeps == [0.1]


def test_a_4xx_is_an_api_error_with_its_code_and_is_not_retried(world, ledger):
    client = world.client(world.config("store"))
    with pytest.raises(ApiError) as refused:
        client.post(POINT_PAYMENTS, {"request_id": "p1", "idm": IDM, "amount": 6000})
    assert (refused.value.status, refused.value.code, refused.value.balance) == (409, "insufficient_points", 5000)
    assert len(world.adapter.sent) == 1
    with pytest.raises(ApiError) as mode:
        world.client(world.config("event")).post(POINT_PAYMENTS, {"request_id": "p2", "idm": IDM, "amount": 1})
    assert (mode.value.status, mode.value.code) == (403, "operation_not_allowed")
    assert ledger.balance(IDM).balance == 5000


def test_when_every_attempt_fails_the_client_is_offline(world):
    config = world.config("store", retries=2)
    world.adapter.down = True
    with pytest.raises(Offline):
        world.client(config).post(BALANCE, {"idm": IDM})
    assert len(world.adapter.sent) == 3
    assert world.sleeps == [0.1, 0.2]
    assert {json.dumps(s.body) for s in world.adapter.sent} == {json.dumps({"idm": IDM})}


def test_offline_says_whether_the_request_may_have_reached_the_server(world):
    world.adapter.down = True  # refused: no attempt got a connection
    with pytest.raises(Offline) as refused:
        world.client(world.config("store")).post(BALANCE, {"idm": IDM})
    assert refused.value.maybe_delivered is False
    world.adapter.down = False
    world.adapter.lose_responses = 1
    world.adapter.down_after_delivery = True  # one got through, its answer was lost
    with pytest.raises(Offline) as lost:
        world.client(world.config("store")).post(BALANCE, {"idm": IDM})
    assert lost.value.maybe_delivered is True


def test_with_no_retries_one_failure_is_offline(world):
    world.adapter.down = True
    with pytest.raises(Offline):
        world.client(world.config("store", retries=0)).post(BALANCE, {"idm": IDM})
    assert len(world.adapter.sent) == 1


class CannedAdapter(BaseAdapter):
    """Answers every request with the same status and body, counting them."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type
        self.calls = 0

    def send(self, request, **kwargs):
        self.calls += 1
        response = requests.Response()
        response.status_code = self.status
        response.headers["Content-Type"] = self.content_type
        response._content = self.body
        response.request, response.url = request, request.url
        return response

    def close(self) -> None:
        pass


def canned_client(world, adapter: CannedAdapter) -> ApiClient:
    return ApiClient(world.config("store", retries=2), session_for(adapter), sleep=world.sleeps.append)


def test_busy_is_retried_once_then_raised(world):
    adapter = CannedAdapter(503, json.dumps({"code": "busy", "message": "try again"}).encode())
    with pytest.raises(ApiError) as busy:
        canned_client(world, adapter).post(BALANCE, {"idm": IDM})
    assert (busy.value.status, busy.value.code, adapter.calls) == (503, "busy", 2)


def test_a_gateway_error_without_the_api_behind_it_counts_as_no_answer(world):
    adapter = CannedAdapter(502, b"<html>Bad Gateway</html>", "text/html")
    with pytest.raises(Offline):
        canned_client(world, adapter).post(BALANCE, {"idm": IDM})
    assert adapter.calls == 3


def test_a_non_json_client_error_is_an_api_error(world):
    adapter = CannedAdapter(413, b"Request Entity Too Large", "text/plain")
    with pytest.raises(ApiError) as error:
        canned_client(world, adapter).post(BALANCE, {"idm": IDM})
    assert (error.value.code, adapter.calls) == ("http_413", 1)


# -- the config file ------------------------------------------------------------------------


def test_config_paths_are_relative_to_its_folder(tmp_path):
    folder = tmp_path / "terminal"
    folder.mkdir()
    (folder / "agent.json").write_text(json.dumps({
        "api_base": "http://127.0.0.1:8000", "terminal_id": "T-1", "key_path": "t.pem",
        "device": "usb", "mode": "store", "queue_path": "queue.sqlite",
    }))
    config = AgentConfig.load(folder / "agent.json")
    assert config.key_path == folder.resolve() / "t.pem"
    assert config.queue_path == folder.resolve() / "queue.sqlite"
    assert (config.timeout_s, config.retries) == (3.0, 2)
    config.save(tmp_path / "copy.json")  # another folder: paths stay inside `terminal/`
    assert AgentConfig.load(tmp_path / "copy.json") == config
    config.save(folder / "agent.json")
    assert json.loads((folder / "agent.json").read_text())["key_path"] == "t.pem"


@pytest.mark.parametrize(("change", "complaint"), [
    ({"mode": "kiosk"}, "mode"),
    ({"colour": "red"}, "unknown settings"),
    ({"retries": -1}, "retries"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"api_base": "127.0.0.1:8000"}, "api_base"),
])
def test_a_bad_config_is_refused_with_what_is_wrong(tmp_path, change, complaint):
    data = {"api_base": "http://127.0.0.1:8000", "terminal_id": "T-1", "key_path": "t.pem", "device": "usb",
            "mode": "store", "queue_path": "q.sqlite", **change}
    (tmp_path / "agent.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=complaint):
        AgentConfig.load(tmp_path / "agent.json")


def test_a_missing_setting_is_named(tmp_path):
    (tmp_path / "agent.json").write_text(json.dumps({"api_base": "http://x", "terminal_id": "T-1"}))
    with pytest.raises(ConfigError, match="key_path"):
        AgentConfig.load(tmp_path / "agent.json")
