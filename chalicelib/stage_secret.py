"""The stage secret, read from Secrets Manager at run time and kept a few minutes.

The secret `chiiki-points/<stage>` holds two keys: `secret_key` (keys the hashes of
e-mail addresses, codes and sessions) and `origin_key` (what CloudFront sends the API).
They used to be resolved into the functions' environment at deploy time, where anyone
allowed to read a function's configuration could read them, and a rotation needed a
deploy. Now only the secret's name is in the environment, only the API handler's role
may read it, and a container reads it on first use and again after `max_age_s`
(one GetSecretValue per container per `max_age_s`, however many requests), so a
rotated value is in use everywhere within that time. Nothing here calls AWS before the
first `value()`.
"""

from __future__ import annotations

import json

from .settings import MissingSecret
from .ttl_cache import TTLCache


class StageSecret:
    def __init__(
        self,
        secret_id: str,
        *,
        max_age_s: float,
        region: str | None = None,
        endpoint: str | None = None,
        client=None,
    ) -> None:
        self.secret_id = secret_id
        self._region = region
        self._endpoint = endpoint
        self._client = client
        self._cache = TTLCache(max_age_s)

    def value(self, name: str) -> bytes | None:
        """The secret's key `name` (bytes), or None when the secret has no such key."""
        text = self._values().get(name)
        return text.encode() if isinstance(text, str) and text else None

    def required(self, name: str) -> bytes:
        found = self.value(name)
        if found is None:
            raise MissingSecret(f"the secret {self.secret_id} has no {name!r} key")
        return found

    def _values(self) -> dict:
        return self._cache.get("secret", self._fetch)

    def _fetch(self) -> dict:
        if self._client is None:
            from .aws_clients import client

            self._client = client("secretsmanager", region=self._region, endpoint=self._endpoint)
        text = self._client.get_secret_value(SecretId=self.secret_id)["SecretString"]
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise MissingSecret(f"the secret {self.secret_id} is not a JSON object of keys") from exc
        if not isinstance(values, dict):
            raise MissingSecret(f"the secret {self.secret_id} is not a JSON object of keys")
        return values
