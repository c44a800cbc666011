"""A requests transport that hands each request to a chalice.test.Client, so the agent's
real HTTP client (session, signing, retries) talks to the in-process app on moto.

The adapter also plays the network's failures: `down` (nothing reaches the server: a
refused connection), `lose_responses` (the server does the work, the answer is lost: a
timeout), `down_after_delivery` (the network fails right after a request got through),
and `hold` (a send waits on an event, to overlap two flushes).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NewConnectionError

from terminal_agent.agent import Agent
from terminal_agent.client import ApiClient
from terminal_agent.config import AgentConfig

HOLD_LIMIT_S = 20  # a held send never waits longer than this


@dataclass(frozen=True)
class Sent:
    """A request as it left the agent."""

    path: str
    body: dict
    signature_input: str


class ChaliceAdapter(BaseAdapter):
    def __init__(self, client) -> None:
        super().__init__()
        self.client = client
        self.down = False
        self.lose_responses = 0
        self.down_after_delivery = False
        self.hold: threading.Event | None = None
        self.holding = threading.Event()  # set while a send waits on `hold`
        self.sent: list[Sent] = []  # every attempt, including failed ones
        self.delivered: list[Sent] = []  # the attempts that reached the server
        self._lock = threading.Lock()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        sent = Sent(path, json.loads(body or b"null"), request.headers.get("Signature-Input", ""))
        with self._lock:
            self.sent.append(sent)
            if self.down:
                # As requests reports a refused connection: the server saw nothing.
                refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
                raise requests.ConnectionError(MaxRetryError(None, request.url, refused), request=request)
        if self.hold is not None:
            self.holding.set()
            if not self.hold.wait(HOLD_LIMIT_S):
                raise AssertionError("a held send was never released")
        answer = self.client.http.request(request.method, path, headers=dict(request.headers), body=body)
        with self._lock:
            self.delivered.append(sent)
            if self.down_after_delivery:
                self.down = True  # the network fails right after this request got through
            if self.lose_responses > 0:
                self.lose_responses -= 1
                raise requests.ReadTimeout("the answer was lost (adapter)", request=request)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.body or b""
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        response.reason = "OK" if answer.status_code < 400 else "Error"
        return response

    def close(self) -> None:
        pass


def session_for(adapter: BaseAdapter) -> requests.Session:
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- the agent's world in tests: the demo terminals, their keys and configs -----------------

MODES = {"store": "store", "store2": "store", "charger": "charger", "event": "event", "okayama": "store"}
API_BASE = "http://127.0.0.1:8000"  # never dialled: the adapter answers


class World:
    """Registered demo terminals (tests.terminals.register_demo) and agents for them,
    all talking through one ChaliceAdapter to the app on moto."""

    def __init__(self, api, terminal_service, folder: Path) -> None:
        from tests.terminals import register_demo

        self.tills = register_demo(terminal_service, api)
        self.adapter = ChaliceAdapter(api)
        self.folder = folder
        self.sleeps: list[float] = []
        self._agents: list[Agent] = []

    def config(self, name: str = "store", **changes) -> AgentConfig:
        till = self.tills[name]
        key_path = self.folder / f"{till.terminal_id}.pem"
        if not key_path.exists():
            key_path.write_bytes(till.key)
            key_path.chmod(0o600)
        config = AgentConfig(
            api_base=API_BASE,
            terminal_id=till.terminal_id,
            key_path=key_path,
            device="udp:127.0.0.1:9",
            mode=MODES[name],
            queue_path=self.folder / f"queue-{name}.sqlite",
        )
        return replace(config, **changes)

    def client(self, config: AgentConfig) -> ApiClient:
        return ApiClient(config, session_for(self.adapter), sleep=self.sleeps.append)

    def agent(self, name: str = "store", **changes) -> Agent:
        config = self.config(name, **changes)
        agent = Agent(config, client=self.client(config))
        self._agents.append(agent)
        return agent

    def close(self) -> None:
        for agent in self._agents:
            agent.close()
