"""``/openapi.json``: the HTTP API described as OpenAPI 3.1, written by hand.

``tests/gateway/test_gateway_openapi.py`` checks that every route the app
serves is described here with the same methods, and the reverse.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from gateway.drills import MAX_WAIT_S as DRILL_MAX_WAIT_S
from gateway.errors import ApiCode
from gateway.wire import respond
from ledger.drills import DRILLS, MAX_BURST
from ledger.overrides import OVERRIDABLE
from ledger.reasons import Reason
from ledger.states import STATES

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
#: Optional in the bodies of an order's later steps: order ids are unique per firm.
_WHOSE = {
    "type": "string",
    "description": "The order's account: says which firm's order the id is when the token "
    "is bound to no firm and several firms hold the id (else 400 INVALID_ORDER naming them).",
}
_NODE = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
#: FIX tag 59 and 126 (ledger/lifecycle.py).
_TIF = {
    "type": "string",
    "enum": ["DAY", "GTC", "GTD", "IOC", "FOK"],
    "default": "DAY",
    "description": "DAY expires at the firm's trading-day roll, GTC never, GTD at expire_time; "
    "IOC and FOK are released at the first fill or release, or after the policy's grace.",
}
_EXPIRE = {
    "type": "string",
    "format": "date-time",
    "description": "GTD only (and required with it): ISO 8601 in UTC, e.g. "
    "2026-11-30T21:00:00Z or 2026-11-30T21:00:00.250Z; must be after the ledger's time.",
}


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
        "description": "URL-encode '#', '+' and '/' in ids. Order ids are unique per firm: "
        "a token bound to firms reaches only their orders (another firm's id is 404 "
        "UNKNOWN_ORDER, as one never used); an unbound token names the account of an id "
        "several firms hold (the body's optional account; a cancel may send {account}).",
    }
]
_KILL_ANSWER = {
    "200": _resp("Done; lists the open orders under the scope to cancel.", "KillAnswer"),
    "400": _resp("Malformed body or scope (INVALID_REQUEST)."),
    **_AUTH,
    "404": _resp("The scope names no node of the policy (UNKNOWN_NODE)."),
    **_UNAVAILABLE,
}


_SYMBOL = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$"}
_HALT = {
    "type": ["object", "null"],
    "properties": {
        "by": {"type": "string", "description": "The feed whose price halted it."},
        "why": {"type": "string"},
        "at_ms": {"type": "integer"},
        "from": {"type": "string"},
        "to": {"type": "string"},
    },
}
#: Reference prices and the jump halt (gateway/prices.py).
_PRICE_SCHEMAS: dict[str, Any] = {
    "PriceBatch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["prices"],
        "properties": {
            "prices": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["symbol", "price"],
                    "properties": {"symbol": _SYMBOL, "price": _NUMBER},
                },
            }
        },
    },
    "PricesSet": {
        "type": "object",
        "properties": {
            "by": {"type": "string"},
            "results": {
                "type": "array",
                "description": "One per firm and symbol, firms sorted, symbols as sent.",
                "items": {
                    "type": "object",
                    "properties": {
                        "firm": {"type": "string"},
                        "symbol": {"type": "string"},
                        "price": {"type": "string"},
                        "status": {"type": "string", "enum": ["set", "halted", "already_halted"]},
                        "jump_bps": {
                            "type": ["integer", "null"],
                            "description": "Move from the previous price, rounded up; null "
                            "for a first price.",
                        },
                    },
                },
            },
            "halted": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Symbols this batch halted in at least one firm.",
            },
        },
    },
    "ReferencePrices": {
        "type": "object",
        "properties": {
            "prices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "firm": {"type": "string"},
                        "symbol": {"type": "string"},
                        "price": {"type": ["string", "null"]},
                        "set_at_ms": {"type": ["integer", "null"]},
                        "age_ms": {"type": ["integer", "null"], "description": "By server time."},
                        "max_age_ms": {"type": ["integer", "null"]},
                        "stale": {
                            "type": ["boolean", "null"],
                            "description": "Older than max_age_ms or missing; null without one.",
                        },
                        "halted": {"type": "boolean"},
                        "halt": _HALT,
                    },
                },
            }
        },
    },
    "ResumeRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "maxLength": 500}},
    },
    "ResumeAnswer": {
        "type": "object",
        "properties": {
            "symbol": {"type": "string"},
            "by": {"type": "string"},
            "reason": {"type": "string"},
            "resumed": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Firms in which the symbol was halted and now trades again.",
            },
            "already": {"type": "boolean", "description": "Halted nowhere: nothing changed."},
        },
    },
}
_PRICE_PATHS: dict[str, Any] = {
    "/v1/reference-prices": {
        "post": {
            "summary": "Set reference prices in every firm; a jump beyond the firm's "
            "max_jump_pct halts the symbol there",
            "description": "Roles: market-data, risk-admin. The price is stored even when it "
            "halts. The batch is checked whole first.",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": _content(_ref("PriceBatch"))},
            "responses": {
                "200": _resp("Stored; the status of each firm and symbol.", "PricesSet"),
                "400": _resp(
                    "Malformed body, symbol or price, a symbol twice, or a float "
                    "(INVALID_REQUEST). Nothing changed."
                ),
                **_AUTH,
                **_UNAVAILABLE,
            },
        },
        "get": {
            "summary": "Reference prices with age, staleness and halt, per firm and symbol",
            "description": "Roles: ops, risk-admin, desk-head.",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "symbol",
                    "in": "query",
                    "required": False,
                    "schema": _SYMBOL,
                    "description": "Repeat for several; without it, every symbol.",
                }
            ],
            "responses": {
                "200": _resp("One row per firm and symbol.", "ReferencePrices"),
                "400": _resp("Malformed symbol or unknown parameter (INVALID_REQUEST)."),
                **_AUTH,
                **_UNAVAILABLE,
            },
        },
    },
    "/v1/symbols/{symbol}/resume": {
        "parameters": [{"name": "symbol", "in": "path", "required": True, "schema": _SYMBOL}],
        "post": {
            "summary": "Lift a symbol's halt in every firm (recorded with who and why)",
            "description": "Role: ops. A symbol that is not halted is left alone (already).",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": _content(_ref("ResumeRequest"))},
            "responses": {
                "200": _resp("Resumed, or halted nowhere.", "ResumeAnswer"),
                "400": _resp("Malformed symbol or missing reason (INVALID_REQUEST)."),
                **_AUTH,
                **_UNAVAILABLE,
            },
        },
    },
}


_OV_ID = {"type": "string", "pattern": "^OV-[1-9][0-9]*$"}
_OVERRIDE = {
    "type": "object",
    "description": "Money values are integer minor units of the policy currency.",
    "properties": {
        "id": _OV_ID,
        "firm": {"type": "string"},
        "scope": {"type": "string"},
        "limit": {"type": "string"},
        "value": {"type": "integer"},
        "policy_value": {"type": "integer", "description": "When it was requested."},
        "direction": {"type": "string", "enum": ["increase", "decrease"]},
        "duration_ms": {"type": "integer"},
        "ticket": {"type": "string"},
        "requested_by": {"type": "string"},
        "reason": {"type": ["string", "null"]},
        "approvers": {"type": "array", "items": {"type": "string"}},
        "status": {
            "type": "string",
            "enum": ["pending", "active", "expired", "superseded", "rejected", "cancelled"],
        },
        "requested_at_ms": {"type": "integer"},
        "approved_at_ms": {"type": ["integer", "null"]},
        "until_ms": {
            "type": ["integer", "null"],
            "description": "Server time from which it no longer applies.",
        },
        "decided_by": {"type": ["string", "null"]},
        "decided_reason": {"type": ["string", "null"]},
        "decided_at_ms": {"type": ["integer", "null"]},
    },
}
_STRESS = {
    "type": "object",
    "properties": {
        "scope": {"type": "string"},
        "firm": {"type": "string"},
        "factor": {"type": "string", "description": "A decimal in (0, 1], e.g. 0.5."},
        "factor_millionths": {"type": "integer"},
        "by": {"type": "string"},
        "reason": {"type": "string"},
        "at_ms": {"type": "integer"},
    },
}
_FIRM = {"type": "string", "description": "Only when the id exists in several firms."}
#: Governed overrides and stress factors (gateway/overrides.py).
_OVERRIDE_SCHEMAS: dict[str, Any] = {
    "OverrideRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["scope", "limit", "value", "ticket"],
        "description": "Give exactly one of duration and duration_ms.",
        "properties": {
            "scope": {"type": "string", "description": "KIND:ID, e.g. desk:EQ-CASH"},
            "limit": {
                "type": "string",
                "enum": list(OVERRIDABLE),
                "description": "Must be set at the node by the policy.",
            },
            "value": {
                **_NUMBER,
                "description": "A count, or an amount in major units for money limits.",
            },
            "duration": {"type": "string", "description": "e.g. 30m, 8h (s, m, h)"},
            "duration_ms": {"type": "integer", "minimum": 1},
            "ticket": {"type": "string", "maxLength": 200},
            "reason": {"type": "string", "maxLength": 500},
        },
    },
    "OverrideStep": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "maxLength": 500}, "firm": _FIRM},
    },
    "Override": _OVERRIDE,
    "Overrides": {
        "type": "object",
        "properties": {"overrides": {"type": "array", "items": _ref("Override")}},
    },
    "StressRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["scope", "factor", "reason"],
        "properties": {
            "scope": {"type": "string"},
            "factor": {**_NUMBER, "description": "A decimal in (0, 1], six places at most."},
            "reason": {"type": "string", "maxLength": 500},
        },
    },
    "StressOff": {
        "type": "object",
        "additionalProperties": False,
        "required": ["scope", "reason"],
        "properties": {"scope": {"type": "string"}, "reason": {"type": "string"}},
    },
    "StressAnswer": {
        "type": "object",
        "properties": {
            "op": {"type": "string", "enum": ["on", "off"]},
            "scope": {"type": "string"},
            "firm": {"type": "string"},
            "factor": {"type": ["string", "null"]},
            "previous": {"type": ["string", "null"]},
            "already": {"type": "boolean"},
            "by": {"type": "string"},
            "reason": {"type": "string"},
            "at_ms": {"type": "integer"},
        },
    },
    "StressList": {"type": "object", "properties": {"stress": {"type": "array", "items": _STRESS}}},
}


def _admin_op(
    summary: str, body: str | None, ok: tuple[str, str, str], extra: dict[str, Any]
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": "Role: risk-admin. The token's name is recorded as who acts.",
        "security": [{"bearer": []}],
        "responses": {ok[0]: _resp(ok[1], ok[2]), **_AUTH, **extra, **_UNAVAILABLE},
    }
    if body:
        op["requestBody"] = {"required": body != "OverrideStep", "content": _content(_ref(body))}
    return op


_BAD = {"400": _resp("Malformed body or field (INVALID_REQUEST), named in `message`.")}
_STEP_ERRORS = {
    **_BAD,
    "404": _resp("No such override (NOT_FOUND)."),
    "409": _resp(
        "Not in a state for this step, or not a person who may take it: the requester "
        "approving or rejecting, one person approving twice, anyone else cancelling "
        "(INVALID_REQUEST). Nothing changed."
    ),
}
_OVERRIDE_ID = [{"name": "override_id", "in": "path", "required": True, "schema": _OV_ID}]
_OVERRIDE_PATHS: dict[str, Any] = {
    "/v1/overrides": {
        "post": _admin_op(
            "Request an override: a decrease applies now, an increase needs two approvals",
            "OverrideRequest",
            ("201", "Recorded; active (decrease) or pending (increase).", "Override"),
            {
                **_BAD,
                "404": _resp("The scope names no node of the policy (UNKNOWN_NODE)."),
            },
        ),
        "get": _admin_op(
            "Every override with its status as of now",
            None,
            ("200", "Oldest first, per firm.", "Overrides"),
            {},
        ),
    },
    "/v1/overrides/{override_id}/approve": {
        "parameters": _OVERRIDE_ID,
        "post": _admin_op(
            "Approve a pending increase (the second distinct approver puts it in force)",
            "OverrideStep",
            ("200", "Approved; active after the second approval.", "Override"),
            {
                **_STEP_ERRORS,
                "404": _resp("No such override (NOT_FOUND), or its scope left the policy."),
            },
        ),
    },
    "/v1/overrides/{override_id}/reject": {
        "parameters": _OVERRIDE_ID,
        "post": _admin_op(
            "Refuse a pending increase (anyone but the requester; reason required)",
            "OverrideStep",
            ("200", "Rejected.", "Override"),
            _STEP_ERRORS,
        ),
    },
    "/v1/overrides/{override_id}/cancel": {
        "parameters": _OVERRIDE_ID,
        "post": _admin_op(
            "Withdraw your own request, or end it now if it is in force",
            "OverrideStep",
            ("200", "Cancelled.", "Override"),
            _STEP_ERRORS,
        ),
    },
    "/v1/stress": {
        "post": _admin_op(
            "Scale every money limit at and under a node by a factor in (0, 1]",
            "StressRequest",
            ("200", "Set (or already so).", "StressAnswer"),
            {**_BAD, "404": _resp("No such node (UNKNOWN_NODE).")},
        ),
        "delete": _admin_op(
            "Lift a node's stress factor",
            "StressOff",
            ("200", "Lifted (or none was set: `already`).", "StressAnswer"),
            {**_BAD, "404": _resp("No such node, and no factor on it (UNKNOWN_NODE).")},
        ),
        "get": _admin_op(
            "Every stress factor in force, with who, when and why",
            None,
            ("200", "By firm and scope.", "StressList"),
            {},
        ),
    },
}


_DRILL_SCHEMAS: dict[str, Any] = {
    "DrillRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "account": {
                **_NODE,
                "description": "The drill account (default: the policy's first).",
            },
            "scope": {
                "type": "string",
                "description": "kill only: what to kill (default: the drill account; its desk "
                "or firm in a drill firm).",
            },
            "max_orders": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_BURST,
                "default": 1000,
                "description": "storm only: most new orders (and cancels) sent.",
            },
            "max_wait_s": {
                "type": "integer",
                "minimum": 0,
                "maximum": DRILL_MAX_WAIT_S,
                "default": DRILL_MAX_WAIT_S,
                "description": "storm only: seconds the cancel phase may wait.",
            },
        },
    },
    "DrillReport": {
        "type": "object",
        "properties": {
            "drill": {"type": "string", "enum": list(DRILLS)},
            "run_id": {"type": "string"},
            "by": {"type": "string", "description": "The calling token's name (audited)."},
            "outcome": {"type": "string", "enum": ["held", "failed"]},
            "scope": {"type": "string"},
            "target": {"type": "object"},
            "probes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "gateway": {"type": "string"},
                        "order_id": {"type": "string"},
                        "case": {"type": "string"},
                        "expected": {"type": "string"},
                        "status": {"type": ["integer", "null"]},
                        "reason": {"type": ["string", "null"]},
                        "ms": {"type": "number"},
                        "held": {"type": "boolean"},
                        "note": {"type": "string"},
                    },
                },
            },
            "failures": {"type": "array", "items": {"type": "string"}},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    },
}
_DRILL_SUMMARIES = {
    "kill": "Kill drill: kill the drill scope, prove every gateway refuses a probe, lift it",
    "storm": "Storm drill: a bounded burst meets MESSAGE_RATE, then CANCEL_RATIO",
    "entitlement": "Entitlement drill: probes breaking an entitlement meet NOT_ENTITLED",
    "collar": "Collar drill: a probe beyond the collar meets PRICE_COLLAR",
}
_DRILL_PATHS: dict[str, Any] = {
    f"/v1/drills/{name}": {
        "post": {
            "summary": summary,
            "description": "Role: ops (a firm-bound token: its firms' drill accounts). Runs "
            "`ledger drill` on the drill account through the gateways of "
            "LEDGER_DRILL_GATEWAYS with LEDGER_DRILL_TOKEN; audited with the token's name.",
            "security": [{"bearer": []}],
            "requestBody": {"required": False, "content": _content(_ref("DrillRequest"))},
            "responses": {
                "200": _resp(
                    "The drill ran: its report; `outcome` failed when a control did not hold.",
                    "DrillReport",
                ),
                **_BAD,
                "401": _AUTH["401"],
                "403": _resp("Wrong role, or a drill account outside the token's firms."),
                "409": _resp("Drills are not configured on this gateway (INVALID_REQUEST)."),
                **_UNAVAILABLE,
            },
        }
    }
    for name, summary in _DRILL_SUMMARIES.items()
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
                        "venue": {
                            **_NODE,
                            "description": "Where the order goes (e.g. XNAS); required by "
                            "accounts whose policy lists venues.",
                        },
                        "time_in_force": _TIF,
                        "expire_time": _EXPIRE,
                    },
                },
                "Basket": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["basket_id", "orders"],
                    "properties": {
                        "basket_id": _ID,
                        "orders": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 500,
                            "items": _ref("Order"),
                        },
                    },
                },
                "BasketDecision": {
                    "type": "object",
                    "properties": {
                        "basket_id": {"type": "string"},
                        "decision": {"type": "string", "enum": ["accepted", "rejected"]},
                        "reason": {"type": "string"},
                        "leg": {
                            "type": "integer",
                            "description": "1-based position of the failing order; 0 when "
                            "accepted or when the basket total broke max_basket_notional.",
                        },
                        "failing_order": {"type": ["string", "null"]},
                        "scope": {"type": ["string", "null"]},
                        "limit": {"type": ["integer", "null"]},
                        "used": {"type": ["integer", "null"]},
                        "requested": {"type": ["integer", "null"]},
                        "replayed": {"type": "boolean"},
                        "message": {"type": "string"},
                        "legs": {"type": "array", "items": _ref("Decision")},
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
                        "state": {
                            "type": ["string", "null"],
                            "enum": ["open", "filled", "released", "rejected", None],
                            "description": "New orders and replays: what the order is now. "
                            "A replay of an order since filled or released is ORDER_CLOSED "
                            "(409), never an acceptance.",
                        },
                        "shadow": {
                            "type": "array",
                            "items": {"type": "object"},
                            "description": "Shadow limits breached (recorded, not enforced).",
                        },
                    },
                },
                "SweepResult": {
                    "type": "object",
                    "required": ["firms", "expired"],
                    "properties": {
                        "firms": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                            "description": "Firm -> expired orders released by this call.",
                        },
                        "expired": {"type": "integer"},
                    },
                },
                "Replace": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["qty", "price"],
                    "properties": {
                        "qty": _QTY,
                        "price": _NUMBER,
                        "account": _WHOSE,
                        "time_in_force": {
                            **_TIF,
                            "enum": ["DAY", "GTC", "GTD"],
                            "description": "Left out: the order keeps its time in force and "
                            "due time. Given: the new one (DAY: the next roll). IOC and FOK "
                            "orders keep theirs.",
                        },
                        "expire_time": _EXPIRE,
                    },
                },
                "Fill": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["fill_id", "qty", "price"],
                    "properties": {
                        "fill_id": _ID,
                        "qty": _QTY,
                        "price": _NUMBER,
                        "pnl": {
                            "type": ["string", "integer"],
                            "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
                            "description": "Realized P&L of the fill in major units "
                            "(negative: a loss); counts toward max_daily_loss.",
                        },
                        "account": _WHOSE,
                    },
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
                        "disabled_strategy": {
                            "type": "boolean",
                            "description": "This fill tripped the fill throttle.",
                        },
                        "message": {"type": "string"},
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
                        },
                        "account": _WHOSE,
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
                        "message": {"type": "string"},
                    },
                },
                "ReconcileRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["records"],
                    "properties": {
                        "records": {
                            "type": "array",
                            "maxItems": 10000,
                            "description": "The drop copy: order records (order_id, account, "
                            "trader, strategy, symbol, side, qty, price, status, optional venue) "
                            "and fill records (order_id, fill_id, qty, price); qty and price as "
                            "decimal strings. Format: README, Reconciliation.",
                            "items": {"type": "object"},
                        },
                        "reason": {"type": "string", "maxLength": 200},
                        "apply": {
                            "type": "boolean",
                            "default": False,
                            "description": "Repair every difference reconcile can repair.",
                        },
                    },
                },
                "ReconcileReport": {
                    "type": "object",
                    "properties": {
                        "by": {"type": "string"},
                        "reason": {"type": "string"},
                        "ok": {"type": "boolean", "description": "Nothing differed."},
                        "applied": {"type": "boolean"},
                        "orders": {"type": "integer"},
                        "fills": {"type": "integer"},
                        "differences": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "kind": {
                                        "type": "string",
                                        "enum": [
                                            "missing_order",
                                            "closed_in_ledger",
                                            "open_in_ledger",
                                            "not_in_drop_copy",
                                            "missing_fill",
                                            "qty_differs",
                                            "price_differs",
                                            "unknown_account",
                                            "unknown_order",
                                        ],
                                    },
                                    "order_id": {"type": "string"},
                                    "account": {"type": "string"},
                                    "ledger": {"type": "string"},
                                    "venue": {"type": "string"},
                                },
                            },
                        },
                        "repairs": {"type": "array", "items": {"type": "object"}},
                        "over_limit": {
                            "type": "array",
                            "description": "Enforced limits a reconciled order's nodes exceed.",
                            "items": {"type": "object"},
                        },
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
                        "cancel_open": {
                            "type": "boolean",
                            "default": False,
                            "description": "POST only: also answer and publish one cancel "
                            "instruction per open order under the scope.",
                        },
                    },
                },
                "CancelInstruction": {
                    "type": "object",
                    "required": [
                        "action",
                        "order_id",
                        "account",
                        "strategy",
                        "trader",
                        "symbol",
                        "side",
                        "leaves_qty",
                    ],
                    "properties": {
                        "action": {"type": "string", "enum": ["cancel"]},
                        "order_id": {"type": "string"},
                        "account": {"type": "string"},
                        "strategy": {"type": "string"},
                        "trader": {"type": "string"},
                        "symbol": {"type": "string"},
                        "side": {"type": "string", "enum": ["buy", "sell"]},
                        "leaves_qty": {
                            "type": "integer",
                            "description": "Quantity still working: order qty less filled.",
                        },
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
                        "cancel_open": {
                            "type": "boolean",
                            "description": "Present (true) when cancel instructions were asked.",
                        },
                        "cancels": {
                            "type": "array",
                            "items": _ref("CancelInstruction"),
                            "description": "With cancel_open: one per order still open, also "
                            "published on the events channel for every gateway instance.",
                        },
                        "published": {"type": "boolean"},
                    },
                },
                "StateRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["scope", "state", "reason"],
                    "properties": {
                        "scope": {
                            "type": "string",
                            "description": "strategy:ID or account:ID",
                        },
                        "state": {"type": "string", "enum": list(STATES)},
                        "reason": {"type": "string", "maxLength": 500},
                    },
                },
                "StateAnswer": {
                    "type": "object",
                    "properties": {
                        "scope": {"type": "string"},
                        "state": {"type": "string", "enum": list(STATES)},
                        "previous": {
                            "type": "string",
                            "enum": list(STATES),
                            "description": "The runtime state before; enabled when none was set.",
                        },
                        "already": {"type": "boolean"},
                        "policy_state": {
                            "type": "string",
                            "enum": list(STATES),
                            "description": "What the policy sets; applies when no runtime "
                            "state is set.",
                        },
                        "by": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
                "States": {
                    "type": "object",
                    "properties": {
                        "states": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "scope": {"type": "string"},
                                    "firm": {"type": "string"},
                                    "state": {"type": "string", "enum": list(STATES)},
                                    "source": {"type": "string", "enum": ["runtime", "policy"]},
                                    "policy_state": {"type": "string", "enum": list(STATES)},
                                    "by": {"type": ["string", "null"]},
                                    "reason": {"type": ["string", "null"]},
                                    "at_ms": {"type": ["integer", "null"]},
                                    "auto": {
                                        "type": "boolean",
                                        "description": "Set by an automatic trigger such as "
                                        "the fill throttle.",
                                    },
                                    "cause": {"type": ["string", "null"]},
                                },
                            },
                        }
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
                                    "limit": {
                                        "type": "integer",
                                        "description": "in force: override, stress",
                                    },
                                    "percent": {"type": "number"},
                                    "shadow": {"type": "boolean"},
                                    "policy_limit": {"type": "integer"},
                                    "override": {"type": ["string", "null"]},
                                    "factor": {"type": ["string", "null"]},
                                },
                            },
                        },
                    },
                },
                "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
                **_PRICE_SCHEMAS,
                **_OVERRIDE_SCHEMAS,
                **_DRILL_SCHEMAS,
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
                            "200": _resp(
                                "A replay of an identical earlier order that is still open "
                                "(replayed true, state open): nothing new was reserved.",
                                "Decision",
                            ),
                            "403": _resp(
                                "Rejected by a control (KILL_SWITCH, GROSS_LIMIT, ...), "
                                "or the token's role is not order-entry.",
                                "Decision",
                            ),
                            "409": _resp(
                                "ORDER_CLOSED: a replay of an identical earlier order that "
                                "has since been filled or released (state says which); "
                                "nothing is reserved for it.",
                                "Decision",
                            ),
                        },
                    ),
                }
            },
            "/v1/baskets": {
                "post": {
                    **_order_op(
                        "Reserve a basket of orders, all or nothing",
                        "Basket",
                        ("201", "Every order accepted and reserved.", "BasketDecision"),
                        {
                            "200": _resp(
                                "A replay of an identical earlier basket whose legs are all "
                                "still open: nothing new was reserved.",
                                "BasketDecision",
                            ),
                            "403": _resp(
                                "Rejected: one leg failed a control (named by leg and "
                                "failing_order), or BASKET_LIMIT; nothing was reserved.",
                                "BasketDecision",
                            ),
                            "409": _resp(
                                "ORDER_CLOSED: a replay of an identical earlier basket with "
                                "a leg since filled or released (named by leg and "
                                "failing_order, with its state).",
                                "BasketDecision",
                            ),
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
                    "description": "Role: ops. Refused (403 REENABLE_REFUSED) for the identity "
                    "that set an automatic kill.",
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
            "/v1/sweep": {
                "post": {
                    "summary": "Release every order whose time in force has run out",
                    "description": "Role: ops (a token bound to firms: those firms). Each "
                    "decision already retires a few due orders; this does the rest. Every "
                    "expiry is audited (release, expired) and published on the events channel.",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _resp("Expired orders released, per firm.", "SweepResult"),
                        "400": _resp("A body with fields (INVALID_REQUEST); nothing changed."),
                        **_AUTH,
                        **_UNAVAILABLE,
                    },
                },
            },
            "/v1/reconcile": {
                "post": {
                    "summary": "Compare a drop copy with the ledger; repair it with apply",
                    "description": "Role: ops. Missing orders are recorded as reconciled "
                    "(never refused, flagged over a limit), orders the venue closed released, "
                    "missing fills applied by fill id; each repair audited with the token's "
                    "name and the reason.",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": _content(_ref("ReconcileRequest")),
                    },
                    "responses": {
                        "200": _resp("The differences, and the repairs.", "ReconcileReport"),
                        "400": _resp(
                            "Malformed body or record (INVALID_REQUEST); nothing changed."
                        ),
                        **_AUTH,
                        **_UNAVAILABLE,
                    },
                }
            },
            "/v1/states": {
                "post": {
                    "summary": "Disable, reduce-only or re-enable a strategy or account",
                    "description": "Role: ops. The state wins over the policy's and survives "
                    "policy loads; `enabled` lifts it. The token's name is recorded as who.",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": _content(_ref("StateRequest"))},
                    "responses": {
                        "200": _resp("Done (or already so: `already`).", "StateAnswer"),
                        "400": _resp("Malformed body, scope or state (INVALID_REQUEST)."),
                        "401": _AUTH["401"],
                        "403": _resp(
                            "Wrong role (FORBIDDEN), or a re-enable by the identity that set "
                            "the state automatically (REENABLE_REFUSED). Nothing changed."
                        ),
                        "404": _resp("No such strategy or account (UNKNOWN_NODE)."),
                        **_UNAVAILABLE,
                    },
                },
                "get": {
                    "summary": "Strategies and accounts not simply enabled, with who and why",
                    "description": "Roles: ops, desk-head. Runtime states and policy states; "
                    "an automatic disable (fill throttle) shows its cause.",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _resp("The states.", "States"),
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
            **_PRICE_PATHS,
            **_OVERRIDE_PATHS,
            **_DRILL_PATHS,
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
                    "description": "Anyone: the request metrics, which name no node or firm. "
                    "With a bearer token of role monitoring, ops or risk-admin: also the "
                    "ledger's gauges, labelled by firm and node.",
                    # Optional: without a token the answer is smaller, not refused.
                    "security": [{}, {"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "Text exposition format.",
                            "content": {"text/plain": {}},
                        },
                        "401": _resp("Unknown or revoked token.", "Error"),
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
