"""``/openapi.json``: the HTTP API described as OpenAPI 3.1, written by hand.

``tests/gateway/test_gateway_openapi.py`` checks that every route the app
serves is described here with the same methods, and the reverse.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from gateway.errors import ApiCode
from gateway.wire import respond
from ledger.reasons import Reason

__all__ = ["bp", "document"]

bp = Blueprint("openapi", __name__)

_BODY_TYPES = ("application/json", "application/msgpack")
_NUMBER = {
    "oneOf": [
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        {"type": "integer", "minimum": 1},
    ],
    "description": "A decimal string or an integer; JSON floats are refused.",
}
_QTY = {
    "oneOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 1}],
    "description": "Whole units, as a string or an integer; JSON floats are refused.",
}
_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:/@#+=-]{1,128}$"}
_NODE = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {t: {"schema": schema} for t in _BODY_TYPES}


def _resp(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description, "content": _content(_ref(schema))}


_AUTH = {
    "401": _resp("No token, or an unknown or revoked one (UNAUTHORIZED). Nothing changed."),
    "403": _resp("The token's role does not cover this route (FORBIDDEN). Nothing changed."),
}
_UNAVAILABLE = {"503": _resp("Redis unreachable, slow or failing (RISK_UNAVAILABLE): fail closed.")}


def _order_op(
    summary: str,
    body: str | None,
    ok: tuple[str, str, str],
    extra: dict[str, Any],
    roles: str = "order-entry",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Role: {roles}.",
        "security": [{"bearer": []}],
        "responses": {
            ok[0]: _resp(ok[1], ok[2]),
            "400": _resp(
                "Malformed body or field (INVALID_ORDER), with the field named in "
                "`message`. Nothing changed.",
                ok[2],
            ),
            **_AUTH,
            **extra,
            **_UNAVAILABLE,
        },
    }
    if body:
        op["requestBody"] = {"required": True, "content": _content(_ref(body))}
    return op


_ORDER_PATH_PARAM = [
    {
        "name": "order_id",
        "in": "path",
        "required": True,
        "schema": _ID,
        "description": "URL-encode '#', '+' and '/' in ids.",
    }
]
_KILL_ANSWER = {
    "200": _resp("Done; lists the open orders under the scope to cancel.", "KillAnswer"),
    "400": _resp("Malformed body or scope (INVALID_REQUEST)."),
    **_AUTH,
    "404": _resp("The scope names no node of the policy (UNKNOWN_NODE)."),
    **_UNAVAILABLE,
}


def document() -> dict[str, Any]:
    decision_props = {
        "decision": {"type": "string", "enum": ["accepted", "rejected"]},
        "reason": {
            "type": "string",
            "enum": [r.value for r in Reason] + [c.value for c in ApiCode],
        },
        "scope": {"type": ["string", "null"], "description": "The node whose limit decided."},
        "limit": {"type": ["integer", "null"]},
        "used": {"type": ["integer", "null"]},
        "requested": {"type": ["integer", "null"]},
        "order_id": {"type": ["string", "null"]},
        "message": {"type": "string"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Limit Ledger gateway",
            "version": "1",
            "description": (
                "Pre-trade risk checks on a Redis-backed ledger. Bodies are JSON, or msgpack "
                "when sent with Content-Type application/msgpack or asked for with Accept. "
                "Money amounts (limit, used, requested, notional) are integer minor units of "
                "the policy currency; counts are integers."
            ),
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Made with `ledger token create`.",
                }
            },
            "schemas": {
                "Order": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [
                        "order_id",
                        "trader",
                        "strategy",
                        "account",
                        "symbol",
                        "side",
                        "qty",
                        "price",
                    ],
                    "properties": {
                        "order_id": _ID,
                        "trader": _NODE,
                        "strategy": _NODE,
                        "account": _NODE,
                        "symbol": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$",
                        },
                        "side": {"type": "string", "enum": ["buy", "sell"]},
                        "qty": _QTY,
                        "price": _NUMBER,
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": decision_props,
                    "required": ["decision", "reason", "message"],
                },
                "Decision": {
                    "type": "object",
                    "required": [
                        "decision",
                        "reason",
                        "scope",
                        "limit",
                        "used",
                        "requested",
                        "order_id",
                    ],
                    "properties": {
                        **decision_props,
                        "notional": {
                            "type": "integer",
                            "description": "Notional reserved, minor units.",
                        },
                        "replayed": {
                            "type": "boolean",
                            "description": "The stored answer of an identical earlier order.",
                        },
                        "shadow": {
                            "type": "array",
                            "items": {"type": "object"},
                            "description": "Shadow limits breached (recorded, not enforced).",
                        },
                    },
                },
                "Replace": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["qty", "price"],
                    "properties": {"qty": _QTY, "price": _NUMBER},
                },
                "Fill": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["fill_id", "qty", "price"],
                    "properties": {"fill_id": _ID, "qty": _QTY, "price": _NUMBER},
                },
                "FillResult": {
                    "type": "object",
                    "properties": {
                        "order_id": {"type": "string"},
                        "fill_id": {"type": "string"},
                        "decision": {"type": "string"},
                        "reason": {"type": "string"},
                        "leaves": {"type": "integer"},
                        "cum_qty": {"type": "integer"},
                        "reserved": {"type": "integer"},
                        "fill_notional": {"type": "integer"},
                        "duplicate": {"type": "boolean"},
                        "overfill": {"type": "boolean"},
                    },
                },
                "Release": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["reason"],
                    "properties": {
                        "reason": {
                            "type": "string",
                            "maxLength": 200,
                            "description": "e.g. cancelled, venue_reject, expired",
                        }
                    },
                },
                "ReleaseResult": {
                    "type": "object",
                    "properties": {
                        "order_id": {"type": "string"},
                        "decision": {"type": "string"},
                        "reason": {"type": "string"},
                        "released": {"type": "integer"},
                        "already_closed": {"type": "boolean"},
                    },
                },
                "KillRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["scope", "reason"],
                    "properties": {
                        "scope": {
                            "type": "string",
                            "description": "global or KIND:ID, e.g. desk:EQ-CASH",
                        },
                        "reason": {"type": "string", "maxLength": 500},
                    },
                },
                "KillAnswer": {
                    "type": "object",
                    "properties": {
                        "op": {"type": "string", "enum": ["kill", "unkill"]},
                        "scope": {"type": "string"},
                        "by": {"type": "string"},
                        "reason": {"type": "string"},
                        "at_ms": {"type": "integer"},
                        "already": {"type": "boolean"},
                        "open_orders": {"type": "array", "items": {"type": "string"}},
                        "published": {"type": "boolean"},
                    },
                },
                "Kills": {
                    "type": "object",
                    "properties": {
                        "kills": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "scope": {"type": "string"},
                                    "by": {"type": ["string", "null"]},
                                    "reason": {"type": ["string", "null"]},
                                    "at_ms": {"type": ["integer", "null"]},
                                },
                            },
                        }
                    },
                },
                "Utilization": {
                    "type": "object",
                    "properties": {
                        "scopes": {"type": "array", "items": {"type": "string"}},
                        "currency": {"type": ["string", "null"]},
                        "minor_units": {"type": ["integer", "null"]},
                        "rows": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "scope": {"type": "string"},
                                    "limit_name": {"type": "string"},
                                    "used": {"type": "integer"},
                                    "limit": {"type": "integer"},
                                    "percent": {"type": "number"},
                                    "shadow": {"type": "boolean"},
                                },
                            },
                        },
                    },
                },
                "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
            },
        },
        "paths": {
            "/v1/orders": {
                "post": {
                    **_order_op(
                        "Pre-trade check and reserve a new order",
                        "Order",
                        ("201", "Accepted and reserved.", "Decision"),
                        {
                            "403": _resp(
                                "Rejected by a control (KILL_SWITCH, GROSS_LIMIT, ...), "
                                "or the token's role is not order-entry.",
                                "Decision",
                            )
                        },
                    ),
                }
            },
            "/v1/orders/{order_id}/replace": {
                "parameters": _ORDER_PATH_PARAM,
                "post": _order_op(
                    "Modify an open order's qty and price (re-checked)",
                    "Replace",
                    ("200", "Accepted; the reservation moved.", "Decision"),
                    {
                        "403": _resp("Rejected by a control.", "Decision"),
                        "404": _resp("UNKNOWN_ORDER.", "Decision"),
                        "409": _resp("ORDER_CLOSED.", "Decision"),
                    },
                ),
            },
            "/v1/orders/{order_id}/cancel": {
                "parameters": _ORDER_PATH_PARAM,
                "post": _order_op(
                    "Count a cancel request (the reservation stays until release)",
                    None,
                    ("200", "Counted.", "Decision"),
                    {
                        "403": _resp("MESSAGE_RATE.", "Decision"),
                        "404": _resp("UNKNOWN_ORDER.", "Decision"),
                        "409": _resp("ORDER_CLOSED.", "Decision"),
                    },
                ),
            },
            "/v1/orders/{order_id}/fills": {
                "parameters": _ORDER_PATH_PARAM,
                "post": _order_op(
                    "Record a fill (a repeated fill_id changes nothing)",
                    "Fill",
                    ("200", "Recorded.", "FillResult"),
                    {"404": _resp("UNKNOWN_ORDER.", "FillResult")},
                ),
            },
            "/v1/orders/{order_id}/release": {
                "parameters": _ORDER_PATH_PARAM,
                "post": _order_op(
                    "Free what the order reserves: cancel confirmed, venue reject, expired",
                    "Release",
                    ("200", "Released (or already closed).", "ReleaseResult"),
                    {"404": _resp("UNKNOWN_ORDER.", "ReleaseResult")},
                ),
            },
            "/v1/kill": {
                "post": {
                    "summary": "Set a kill switch",
                    "description": "Role: ops.",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": _content(_ref("KillRequest"))},
                    "responses": _KILL_ANSWER,
                },
                "delete": {
                    "summary": "Lift a kill switch",
                    "description": "Role: ops.",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": _content(_ref("KillRequest"))},
                    "responses": _KILL_ANSWER,
                },
                "get": {
                    "summary": "Active kill switches with who, when and why",
                    "description": "Roles: ops, desk-head.",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _resp("The active kills.", "Kills"),
                        **_AUTH,
                        **_UNAVAILABLE,
                    },
                },
            },
            "/v1/utilization": {
                "get": {
                    "summary": "Used against limit per node and limit",
                    "description": "Roles: desk-head (its own desks and their accounts), ops, "
                    "risk-admin. Without scope: global (desk-head: its desks).",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "scope",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "global or KIND:ID, e.g. desk:EQ-CASH",
                        }
                    ],
                    "responses": {
                        "200": _resp("Rows per node and limit.", "Utilization"),
                        "400": _resp("Malformed scope (INVALID_REQUEST)."),
                        "401": _AUTH["401"],
                        "403": _resp("Wrong role, or a desk-head asking outside its desks."),
                        "404": _resp("No such node (UNKNOWN_NODE)."),
                        **_UNAVAILABLE,
                    },
                }
            },
            "/dashboard": {
                "get": {
                    "summary": "The risk dashboard (HTML)",
                    "description": "Roles: ops, desk-head. Token in the Authorization header, the "
                    "`token` query parameter or the `ledger_token` cookie.",
                    "parameters": [
                        {
                            "name": "token",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "The page.", "content": {"text/html": {}}},
                        **_AUTH,
                        **_UNAVAILABLE,
                    },
                }
            },
            "/dashboard/live": {
                "get": {
                    "summary": "The dashboard's live part (HTML fragment), fetched by the page",
                    "description": "As /dashboard.",
                    "responses": {
                        "200": {"description": "The fragment.", "content": {"text/html": {}}},
                        **_AUTH,
                        **_UNAVAILABLE,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": _resp("The process answers.", "Status")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: Redis reachable and scripts loaded",
                    "responses": {
                        "200": _resp("Ready.", "Status"),
                        "503": _resp("Redis unavailable.", "Status"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Text exposition format.",
                            "content": {"text/plain": {}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {"description": "OpenAPI 3.1.", "content": {"application/json": {}}}
                    },
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return respond(document())
