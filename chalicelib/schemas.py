"""Request bodies validated against the schemas of the OpenAPI document the repo
keeps (chalicelib/openapi.json), so the document and the checks cannot drift apart."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).with_name("openapi.json")


# Bounds every JSON body meets before it is parsed (SPEC §7): the largest body the API
# takes (a grant list of 200 rows is about 12 KB; nothing else comes near) and the
# deepest nesting (the schemas go three levels deep). Deeper bodies made json.loads
# raise RecursionError, a 500.
MAX_BODY_BYTES = 16_384
MAX_DEPTH = 32
# The longest path parameter any route takes (ids are at most 64 characters): a longer one
# would reach DynamoDB as a key over its size limit, a ValidationException (a 500).
MAX_PATH_PARAMETER = 128


class BodyInvalid(ValueError):
    """`field` (e.g. "data.amount") and `rule` (e.g. "maximum") say which check failed,
    when the schema's validator tells, so a route can answer a limit with its own code."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class InputRefused(ValueError):
    """A request refused for its size or shape before a route reads it (a body too large
    or too deep, a path parameter too long): its own code and HTTP status, a message for
    operators and terminals, and one in Japanese for residents (chalicelib/http.py
    answers with them, for every route)."""

    code = "invalid_request"
    status = 400
    japanese = "入力内容を確認してください。"


class BodyTooLarge(InputRefused):
    code = "body_too_large"
    status = 413
    japanese = "送信された内容が大きすぎます。"

    def __init__(self, size: int) -> None:
        super().__init__(f"the body is {size:,} bytes; at most {MAX_BODY_BYTES:,} are accepted")


class BodyTooDeep(InputRefused):
    code = "body_too_deep"
    japanese = "送信された内容の形式が正しくありません。"

    def __init__(self) -> None:
        super().__init__(f"the body nests arrays or objects more than {MAX_DEPTH} levels deep")


class ParameterTooLong(InputRefused):
    def __init__(self) -> None:
        super().__init__(f"a path parameter is longer than {MAX_PATH_PARAMETER} characters")


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


def _deeper_than(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in `raw` nest more than `limit` deep (brackets inside
    strings do not count). One pass, no recursion; most bodies skip it, having fewer
    opening brackets than the limit."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in raw:  # UTF-8: every byte of a multi-byte character is >= 0x80
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def parse(name: str, raw: bytes | str | None) -> dict[str, Any]:
    """The JSON body as a dict, valid against schema `name`. InputRefused (too large, too
    deep) or BodyInvalid says why not."""
    raw = raw.encode() if isinstance(raw, str) else raw or b""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(len(raw))
    if _deeper_than(raw, MAX_DEPTH):
        raise BodyTooDeep()
    try:
        body = json.loads(raw, parse_float=_number)
    except RecursionError as exc:  # not reached under MAX_DEPTH; kept so it can never be a 500
        raise BodyTooDeep() from exc
    except ValueError as exc:
        raise BodyInvalid("the body is not JSON") from exc
    try:
        return _validator(name)(body)
    except Exception as exc:  # fastjsonschema.JsonSchemaException, imported lazily
        raise BodyInvalid(
            getattr(exc, "message", str(exc)), field=getattr(exc, "name", None), rule=getattr(exc, "rule", None)
        ) from exc
