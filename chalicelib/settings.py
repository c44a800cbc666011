"""The one typed settings object, read from the environment on first use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    region: str
    table_name: str
    dynamodb_endpoint: str | None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-1",
        table_name=env.get("CHIIKI_TABLE", "chiiki-points"),
        dynamodb_endpoint=env.get("CHIIKI_DYNAMODB_ENDPOINT") or None,
    )
