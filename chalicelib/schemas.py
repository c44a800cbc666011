"""Request bodies validated against the schemas of the OpenAPI document the repo
keeps (chalicelib/openapi.json), so the document and the checks cannot drift apart."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).with_name("openapi.json")


class BodyInvalid(ValueError):
    """`field` (e.g. "data.amount") and `rule` (e.g. "maximum") say which check failed,
    when the schema's validator tells, so a route can answer a limit with its own code."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text(encoding="utf-8"))


@cache
def _validator(name: str):
    import fastjsonschema  # compiled on first use, not at import: cold starts matter

    schema = {"$ref": f"#/components/schemas/{name}", "components": document()["components"]}
    return fastjsonschema.compile(schema)


def _number(text: str) -> int | float:
    """JSON Schema counts 5.0 as an integer; so do we, as a Python int, so that what
    passed as an integer is one from here on."""
    value = float(text)
    return int(value) if value.is_integer() else value


def parse(name: str, raw: bytes | None) -> dict[str, Any]:
    """The JSON body as a dict, valid against schema `name`; BodyInvalid says why not."""
    try:
        body = json.loads(raw or b"", parse_float=_number)
    except ValueError as exc:
        raise BodyInvalid("the body is not JSON") from exc
    try:
        return _validator(name)(body)
    except Exception as exc:  # fastjsonschema.JsonSchemaException, imported lazily
        raise BodyInvalid(
            getattr(exc, "message", str(exc)), field=getattr(exc, "name", None), rule=getattr(exc, "rule", None)
        ) from exc
