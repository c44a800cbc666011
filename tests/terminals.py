"""Helpers for terminal API tests: registered demo terminals and signed requests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chalicelib.terminals.domain import Event, Merchant, Mode, Terminal
from terminal_agent.signing import public_key_pem, terminal_auth


def new_key() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class SignedTerminal:
    """A registered terminal that signs its requests to a chalice.test.Client."""

    client: object
    terminal_id: str
    key: bytes

    def prepare(self, path: str, body: dict | bytes, when: datetime | None = None, *, nonce: str | None = None,
                expires: datetime | None = None) -> requests.PreparedRequest:
        """The request signed now, or as if at `when` for tests that move the server's clock;
        with the given `nonce` instead of a fresh one, and an `expires` parameter if given."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = requests.Request(
            "POST", "http://127.0.0.1" + path, data=data, headers={"Content-Type": "application/json"}
        ).prepare()
        auth = terminal_auth(self.key, self.terminal_id)
        if nonce is not None or expires is not None:
            auth = _Chosen(auth, nonce, expires)
        if when is None:
            auth(req)
            return req
        from unittest import mock

        with mock.patch("requests_http_signature.datetime") as fake:
            fake.datetime.now.return_value = when.astimezone().replace(tzinfo=None)
            fake.timedelta = timedelta
            auth(req)
        return req

    def send(self, req: requests.PreparedRequest, *, body: bytes | None = None):
        path = req.path_url
        response = self.client.http.post(path, headers=dict(req.headers), body=req.body if body is None else body)
        return response.status_code, json.loads(response.body or b"null")

    def post(self, path: str, body: dict | bytes):
        return self.send(self.prepare(path, body))

    def post_at(self, path: str, body: dict, when: datetime):
        return self.send(self.prepare(path, body, when))

    def post_signed(self, path: str, body: dict | bytes, **params):
        """Posted with chosen signature parameters (`nonce`, `expires`)."""
        return self.send(self.prepare(path, body, **params))


class _Chosen:
    """A terminal's signer with a chosen nonce and/or `expires` parameter."""

    def __init__(self, auth, nonce: str | None, expires: datetime | None) -> None:
        self.auth = auth
        if nonce is not None:
            auth.get_nonce = lambda request: nonce
        if expires is not None:
            auth.get_expires = lambda request, created: expires

    def __call__(self, req: requests.PreparedRequest) -> requests.PreparedRequest:
        return self.auth(req)

def register_demo(terminals, client) -> dict[str, SignedTerminal]:
    """Merchants, an event and one terminal of each mode for Niimi, and one Okayama terminal."""
    now = datetime.now(UTC)
    terminals.register_merchant(Merchant("M-1", "niimi", "新見精肉店", "新見", "食料品"))
    terminals.register_merchant(Merchant("M-2", "niimi", "まんなか書店", "新見", "書籍", rebate_bps=200))
    terminals.register_merchant(Merchant("M-9", "okayama", "岡山商店", "北区", "食料品"))
    terminals.register_event(
        Event("E-1", "niimi", "健康ウォーク", 500, now - timedelta(hours=1), now + timedelta(hours=3))
    )
    specs = {
        "store": Terminal("T-STORE", "niimi", Mode.STORE, "", merchant_id="M-1"),
        "store2": Terminal("T-STORE2", "niimi", Mode.STORE, "", merchant_id="M-2"),
        "charger": Terminal("T-CHARGE", "niimi", Mode.CHARGER, ""),
        "event": Terminal("T-EVENT", "niimi", Mode.EVENT, "", event_id="E-1"),
        "okayama": Terminal("T-OKA", "okayama", Mode.STORE, "", merchant_id="M-9"),
    }
    out = {}
    for name, spec in specs.items():
        key = new_key()
        terminals.register_terminal(Terminal(**{**spec.__dict__, "public_key": public_key_pem(key)}))
        out[name] = SignedTerminal(client, spec.terminal_id, key)
    return out
