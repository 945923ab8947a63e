"""Bodies in and out: JSON by default, msgpack when the client sends or asks for it."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from flask import Response, g, request

from gateway.errors import ApiCode, ApiError, invalid
from gateway.fields import kind

__all__ = ["JSON", "MSGPACK", "read_body", "peek", "respond", "wants_msgpack"]

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_TYPES = frozenset({MSGPACK, "application/x-msgpack"})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


class _DuplicateKey(ValueError):
    def __init__(self, key: object) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """An object from its pairs, refusing a key given twice (the last would silently win)."""
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _raw_body() -> bytes:
    """The request body; a 413 for a streamed (chunked) body over ``MAX_CONTENT_LENGTH``.

    Werkzeug cuts a body without ``Content-Length`` at the limit without a word,
    so one more byte is asked of the server's own stream: if there is one, the
    body was larger, and the answer is 413 without reading the rest.
    """
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        if "too_large" not in g:
            g.too_large = bool(request.environ["wsgi.input"].read(1))
        if g.too_large:
            raise ApiError(413, ApiCode.REQUEST_TOO_LARGE, f"the body is larger than {limit} bytes")
    return raw


def read_body(*, required: bool = True) -> dict[str, Any]:
    """The request body as an object; a clear 400 for anything else.

    msgpack when ``Content-Type`` is ``application/msgpack``, JSON otherwise.
    An empty body is ``{}`` where the route has no required field.
    """
    parsed: dict[str, Any] | None = g.get("body")
    if parsed is not None:
        return parsed
    raw = _raw_body()
    if not raw.strip():
        if required:
            raise invalid("the body is empty; send a JSON (or msgpack) object")
        return {}
    if request.mimetype in _MSGPACK_TYPES:
        try:
            body = msgpack.unpackb(
                raw, raw=False, strict_map_key=True, object_pairs_hook=_unique_keys
            )
        except _DuplicateKey as exc:
            raise invalid(_duplicate(exc.key)) from exc
        except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
            raise invalid(f"the body is not valid msgpack ({type(exc).__name__})") from exc
    else:
        try:
            body = json.loads(raw, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
        except _DuplicateKey as exc:
            raise invalid(_duplicate(exc.key)) from exc
        except (ValueError, RecursionError) as exc:
            raise invalid(f"the body is not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise invalid(f"the body must be an object, not {kind(body)}")
    g.body = body
    return body


def _duplicate(key: object) -> str:
    shown = json.dumps(key) if isinstance(key, str) else repr(key)
    return f"the body gives the key {shown} more than once; send each key once"


def peek(field: str) -> Any:
    """A top-level field of the body if it parses, else None; never raises."""
    try:
        return read_body().get(field)
    except ApiError:
        return None


def wants_msgpack() -> bool:
    """msgpack if the client prefers it in ``Accept``, or sent msgpack and accepts anything."""
    raw = request.environ.get("HTTP_ACCEPT", "")
    # The common answers without parsing the header (the same result as below).
    if raw == JSON:
        return False
    if raw in ("", "*/*"):
        return request.mimetype in _MSGPACK_TYPES
    accept = request.accept_mimetypes
    if accept:
        q_pack = max(accept.quality(m) for m in _MSGPACK_TYPES)
        q_json = accept.quality(JSON)
        if q_pack != q_json:
            return q_pack > q_json
    return request.mimetype in _MSGPACK_TYPES


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if wants_msgpack():
        data: bytes | str = msgpack.packb(body, use_bin_type=True)
        mimetype = MSGPACK
    else:
        data = json.dumps(body, separators=(",", ":"))
        mimetype = JSON
    resp = Response(data, status=status, headers=headers, mimetype=mimetype)
    # Set as a plain header: ``resp.vary`` parses the (absent) header into a set first.
    if "Vary" in resp.headers:
        resp.vary.add("Accept")
    else:
        resp.headers["Vary"] = "Accept"
    return resp
