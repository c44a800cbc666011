"""RFC 9421 HTTP Message Signatures from terminals, verified with http-message-signatures.

A terminal signs `@method`, `@path` and `content-digest` (RFC 9530, SHA-256 of the
body) with its Ed25519 key, with the parameters `created`, `nonce`, `keyid` (its
terminal id) and `alg`. A request is refused when the signature does not verify, the
key is unknown or disabled, `created` is more than 300 s from the server's clock, an
`expires` parameter is past on the server's clock, the body does not match its digest,
the nonce is not 1-128 characters of `[A-Za-z0-9._:-]`, or the nonce was used before
(checked by the caller, which spends the nonce in the same DynamoDB transaction as the
work).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import http_sf
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, InvalidSignature, algorithms
from http_message_signatures.digests import ContentDigest

from .domain import Terminal, TerminalStatus
from .errors import SignatureRejected

COVERED = ("@method", "@path", "content-digest")
MAX_SKEW = dt.timedelta(seconds=300)
# The nonce becomes part of a DynamoDB key (a 1,500-character one was a 500 from
# DynamoDB): the same bound and alphabet as request ids.
NONCE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# What a terminal id can be (registered through the admin API or an import).
TERMINAL_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Signed:
    terminal: Terminal
    nonce: str
    created: dt.datetime


@dataclass(frozen=True)
class _Message:
    """What the verifier reads of a request."""

    method: str
    url: str
    headers: Mapping[str, str]


class _LenientClock(HTTPMessageVerifier):
    # `created` is judged against our own (injectable) clock below, not the library's.
    max_clock_skew = dt.timedelta(days=3650)


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, find: Callable[[str], Terminal | None]) -> None:
        self.find = find
        self.terminal: Terminal | None = None

    def resolve_public_key(self, key_id: str):
        if not TERMINAL_ID.fullmatch(key_id):  # never a terminal; unchecked, a DynamoDB key too large to read
            raise SignatureRejected("unknown key", code="unknown_key")
        terminal = self.find(key_id)
        if terminal is None:
            raise SignatureRejected("unknown key", code="unknown_key")
        if terminal.status is not TerminalStatus.ACTIVE:
            raise SignatureRejected("the terminal's key is disabled", code="key_disabled")
        self.terminal = terminal
        return terminal.public_key.encode()


def verify(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    find_terminal: Callable[[str], Terminal | None],
    now: dt.datetime,
) -> Signed:
    lowered = {k.lower(): v for k, v in headers.items()}
    if "content-digest" not in lowered:
        raise SignatureRejected("the request has no Content-Digest", code="digest_mismatch")
    try:
        ContentDigest.verify(lowered["content-digest"], body)
    except Exception as exc:
        raise SignatureRejected("the body does not match its Content-Digest", code="digest_mismatch") from exc
    keys = _Keys(find_terminal)
    message = _Message(method.upper(), "https://terminal.invalid" + quote(path), headers)
    try:
        (result,) = _LenientClock(signature_algorithm=algorithms.ED25519, key_resolver=keys).verify(
            message, max_age=None, require_components=COVERED, body=body
        )
    except InvalidSignature as exc:
        cause = exc.__cause__
        if isinstance(cause, SignatureRejected):
            raise cause from exc
        raise SignatureRejected(f"the signature does not verify: {exc}") from exc
    except ValueError as exc:  # a signature naming several labels and the like
        raise SignatureRejected(f"the signature is malformed: {exc}") from exc
    created = dt.datetime.fromtimestamp(result.parameters["created"], tz=dt.UTC)
    if abs(now - created) > MAX_SKEW:
        raise SignatureRejected("the signature's created time is more than 300 s off", code="stale_signature")
    expires = result.parameters.get("expires")
    if expires is not None and now > dt.datetime.fromtimestamp(expires, tz=dt.UTC):
        raise SignatureRejected("the signature's expires time has passed", code="expired_signature")
    if not result.nonce:
        raise SignatureRejected("the signature has no nonce", code="missing_nonce")
    if not NONCE.fullmatch(str(result.nonce)):
        raise SignatureRejected("the nonce must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
                                code="bad_nonce")
    assert keys.terminal is not None
    return Signed(keys.terminal, str(result.nonce), created)


def claimed_key_id(headers: Mapping[str, str]) -> str | None:
    """The keyid a request's Signature-Input names, unverified and cut to 64 characters:
    which terminal a refusal concerns, as far as the request says."""
    value = next((v for k, v in headers.items() if k.lower() == "signature-input"), None)
    try:
        ((_, params),) = http_sf.parse(value.encode(), tltype="dictionary").values()
    except (AttributeError, ValueError):  # absent, malformed, or not one signature
        return None
    key_id = params.get("keyid")
    return key_id[:64] if isinstance(key_id, str) else None
