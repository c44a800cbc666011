"""The terminal API over HTTP: signed requests, retries that are safe, typed errors.

Every attempt is signed anew (a fresh nonce and `created`): the server refuses a reused
nonce, so a retry can never resend the previous attempt's signature. The body, and with
it the request id, stays the same on every attempt; the server's idempotency is what
makes a retry after a lost response safe (SPEC §7).

What is retried, and why:
- a timeout or a connection error: the request may or may not have reached the server;
  resending the same body has one effect either way;
- a gateway failure without a JSON error (502/503/504 from a proxy): the API said
  nothing about the work, which is the same situation;
- 503 `busy` once: the card was being changed by another request a moment ago.
Never a 4xx: the server has decided, and asking again gets the same answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import requests
from urllib3.exceptions import ConnectTimeoutError

from .config import AgentConfig
from .signing import load_private_key, terminal_auth

BACKOFF_S = 0.1  # first pause between attempts; doubled each time (a clerk is waiting)
GATEWAY_FAILURES = frozenset({502, 503, 504})

# A response lost on the way back is the same case as no answer at all.
_NO_ANSWER = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


class ApiError(Exception):
    """The API answered with an error: `code` is its stable machine code (chalicelib
    errors), `balance` comes with `insufficient_points`."""

    def __init__(self, status: int, code: str, message: str, balance: int | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.balance = balance


class Offline(Exception):
    """No attempt got an answer from the API (timeouts, connection errors, a gateway
    without the API behind it). Unless `maybe_delivered` is False (no attempt even got a
    connection), the request may have been done: resend the same body to find out."""

    def __init__(self, message: str, *, maybe_delivered: bool = True) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


class ApiClient:
    """One keep-alive session to the API, shared by every tap (a new TLS handshake per
    tap would cost more than the work itself)."""

    def __init__(
        self,
        config: AgentConfig,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = config.api_base.rstrip("/")
        self.timeout_s = config.timeout_s
        self.retries = config.retries
        # Raises KeyFileExposed for a key others may read: the agent does not start.
        self._auth = terminal_auth(load_private_key(config.key_path), config.terminal_id)
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep

    def close(self) -> None:
        self._session.close()

    def post(self, path: str, body: dict) -> dict:
        """POST `body` as JSON to `path` (e.g. /api/terminal/v1/balance) and return the
        JSON answer. Raises ApiError for an error answer, Offline when none came."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        url = self.base_url + path
        failures = 0
        maybe_delivered = False
        busy_retried = False
        while True:
            try:
                response = self._session.post(
                    url,
                    data=data,
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                    auth=self._auth,  # signs this attempt: fresh nonce and created
                    timeout=self.timeout_s,
                )
            except _NO_ANSWER as exc:
                failures += 1
                maybe_delivered = maybe_delivered or not _never_sent(exc)
                if failures > self.retries:
                    raise Offline(
                        f"no answer from {self.base_url} after {failures} attempts: {exc}",
                        maybe_delivered=maybe_delivered,
                    ) from exc
                self._sleep(BACKOFF_S * 2 ** (failures - 1))
                continue
            error = _error_of(response)
            if error is None:
                return _json_of(response)
            if error.code == "busy" and not busy_retried:
                busy_retried = True
                self._sleep(BACKOFF_S)
                continue
            if error.code == "gateway_failure":
                failures += 1
                maybe_delivered = True  # a proxy may have passed it on before failing
                if failures > self.retries:
                    raise Offline(f"{self.base_url} answered {error.status} {failures} times: {error.message}")
                self._sleep(BACKOFF_S * 2 ** (failures - 1))
                continue
            raise error


def _never_sent(exc: Exception) -> bool:
    """True when no connection was made, so the server cannot have seen the request
    (refused, unreachable, name not resolved, connect timeout). Anything later — a read
    timeout, a reset on a kept-alive connection — may have come after the server acted."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ConnectTimeoutError)  # urllib3's NewConnectionError is one


def _error_of(response: requests.Response) -> ApiError | None:
    """None for a success; otherwise the API's JSON error, or a stand-in for a proxy's."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        balance = body.get("balance")
        return ApiError(
            response.status_code,
            body["code"],
            str(body.get("message", "")),
            balance if isinstance(balance, int) else None,
        )
    text = response.text[:200]
    if response.status_code in GATEWAY_FAILURES:
        return ApiError(response.status_code, "gateway_failure", text)
    return ApiError(response.status_code, f"http_{response.status_code}", text)


def _json_of(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise ApiError(response.status_code, "invalid_response", "the answer is not JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(response.status_code, "invalid_response", "the answer is not a JSON object")
    return body
