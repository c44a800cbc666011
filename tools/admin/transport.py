"""The signed client of the admin API: SigV4 (service execute-api) with credentials
from the default chain, its answers, and `Failed`, the error every command raises
(exit 1 refused by the API, 2 not sent or no answer)."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from email.message import Message
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

DEFAULT_REGION = "ap-northeast-1"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
JSON, CSV = "application/json", "text/csv"
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


class Failed(Exception):
    """The API refused the request (exit 1) or was not reached (exit 2)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def region_for(url: str, given: str | None) -> str:
    if given:
        return given
    match = EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    if match:
        return match.group(1)
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def credentials_for(url: str):
    import botocore.session
    from botocore.credentials import Credentials

    found = botocore.session.get_session().get_credentials()
    if found is not None:
        return found
    if urlsplit(url).hostname in LOOPBACK:
        return Credentials("local", "local")  # `make run` checks no signature
    raise Failed("no AWS credentials found (environment, profile or role): the admin API needs them", 2)


def signed_request(method: str, url: str, body: bytes | None, *, region: str, credentials, content_type: str = JSON,
                   accept: str = JSON) -> urllib.request.Request:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    headers = {"Content-Type": content_type, "Accept": accept}
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    prepared = request.prepare()
    return urllib.request.Request(prepared.url, data=body if method != "GET" else None,
                                  headers=dict(prepared.headers.items()), method=method)


class Answer(NamedTuple):
    status: int
    headers: Message
    body: bytes


class Api:
    def __init__(self, base: str, issuer: str, region: str | None = None, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/")
        self.issuer = issuer
        self.region = region_for(self.base, region)
        self.timeout = timeout
        self._credentials = None

    def call(self, method: str, path: str, body: dict | None = None, *, request_id: str | None = None) -> Any:
        """Send a JSON body (or none) and return the JSON answer."""
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        retry = f"; repeat the command with --request-id {request_id} to make the change once" if request_id else ""
        return json.loads(self.send(method, path, data, retry=retry).body or b"null")

    def send(self, method: str, path: str, data: bytes | None = None, *, content_type: str = JSON,
             accept: str = JSON, retry: str = "") -> Answer:
        """The answer as it came; `retry` ends the message of a failure."""
        url = f"{self.base}/api/admin/v1/issuers/{quote(self.issuer, safe='')}{path}"
        if self._credentials is None:
            self._credentials = credentials_for(url)
        request = signed_request(method, url, data, region=self.region, credentials=self._credentials,
                                 content_type=content_type, accept=accept)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (our URL)
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            raise refused(exc.code, exc.read(), retry) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Failed(f"no answer from {self.base}: {reason}{retry}", 2) from exc


def refused(status: int, raw: bytes, retry: str) -> Failed:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("message"):
        code = f" ({answer['code']})" if answer.get("code") else ""
        message = f"{answer['message']}{code}"
    else:
        message = raw.decode("utf-8", "replace").strip()[:300] or "no details"
    if status >= 500:
        return Failed(f"the API failed (HTTP {status}): {message}{retry}", 2)
    return Failed(f"refused (HTTP {status}): {message}")
