"""``/openapi.json``: the HTTP API as OpenAPI 3.1, generated from the app's own routes.

Every route of the app is described: its path and methods from Flask's URL
map, its summary from the view's docstring, who may call it from
:func:`gateway.auth.requires`, and its body and answers from
:func:`gateway.api.api`, whose models also check every request. So the
document cannot leave out a route, nor describe a body other than the one
the route takes.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from gateway.api import Spec, api
from gateway.replies import Error
from gateway.wire import JSON, MSGPACK, respond

__all__ = ["bp", "document"]

bp = Blueprint("openapi", __name__)

_BODY_TYPES = (JSON, MSGPACK)
_REF = "#/components/schemas/{model}"
_DESCRIPTION = (
    "Pre-trade risk checks on a Redis-backed ledger. Bodies are JSON, or msgpack when sent "
    "with Content-Type application/msgpack or asked for with Accept. Money amounts (limit, "
    "used, requested, notional) are integer minor units of the policy currency; counts are "
    "integers. A refused body is a 400 whose message names the field."
)

_NOTHING = "Nothing changed."
_AUTH = {
    401: (f"No token, or an unknown or revoked one (UNAUTHORIZED). {_NOTHING}", None),
    403: (f"The token's role does not cover this route (FORBIDDEN). {_NOTHING}", None),
    503: ("Redis unreachable, slow or failing (RISK_UNAVAILABLE): fail closed.", None),
}
#: Whose malformed requests are INVALID_ORDER (gateway.errors.invalid_code).
_ORDER_BLUEPRINTS = ("orders", "baskets")
_TEXT = {"schema": {"type": "string"}}


class _Schemas(GenerateJsonSchema):
    """Components without a title per property (the property's name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _content(ref: dict[str, Any]) -> dict[str, Any]:
    return {t: {"schema": ref} for t in _BODY_TYPES}


def _answer(description: str, model: type[BaseModel] | str | None, refs: Any) -> dict[str, Any]:
    if isinstance(model, str):  # a media type that is not JSON: a page, a text exposition
        return {"description": description, "content": {model: {}}}
    return {"description": description, "content": _content(refs[model or Error])}


def _operation(view: Any, endpoint: str, arguments: set[str], refs: Any) -> dict[str, Any]:
    spec: Spec = view.api
    summary, _, details = (getattr(view, "summary", None) or view.__doc__ or "").partition("\n")
    op: dict[str, Any] = {"summary": summary.strip().rstrip(".")}
    roles = getattr(view, "roles", None) or spec.roles
    details = " ".join(details.split())
    if roles:
        who = ", ".join(getattr(r, "value", r) for r in roles)
        details = f"Role{'s' if len(roles) > 1 else ''}: {who}. {details}".strip()
    if details:
        op["description"] = details
    if spec.security is not None:
        op["security"] = spec.security
    elif roles:
        op["security"] = [{"bearer": []}]
    answers: dict[int, tuple[str, Any]] = {}
    if spec.body is not None or arguments:
        code = "INVALID_ORDER" if endpoint.split(".")[0] in _ORDER_BLUEPRINTS else "INVALID_REQUEST"
        answers[400] = (f"Malformed body or field ({code}), named in `message`. {_NOTHING}", None)
    if roles:
        answers.update(_AUTH)
    answers.update(spec.answers)
    op["responses"] = {str(s): _answer(d, m, refs) for s, (d, m) in sorted(answers.items())}
    parameters = [
        {"name": name, "in": "path", "required": True, **spec.path.get(name, _TEXT)}
        for name in sorted(arguments)
    ] + [
        {"name": name, "in": "query", "required": False, **_TEXT, "description": text}
        for name, text in spec.query.items()
    ]
    if parameters:
        op["parameters"] = parameters
    if spec.body is not None:
        op["requestBody"] = {"required": not spec.optional, "content": _content(refs[spec.body])}
    return op


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s routes."""
    routes: list[tuple[Any, Any]] = [
        (rule, app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    ]
    models: set[type[BaseModel]] = {Error}
    for _, view in routes:
        spec: Spec = view.api
        models.update(m for _, m in spec.answers.values() if isinstance(m, type))
        if spec.body is not None:
            models.add(spec.body)
    keys, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=_REF,
        schema_generator=_Schemas,
    )
    refs = {model: ref for (model, _), ref in keys.items()}
    paths: dict[str, dict[str, Any]] = {}
    for rule, view in routes:
        arguments = set(rule.arguments) - set(rule.defaults or {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(_path(rule.rule), {})[method.lower()] = _operation(
                view, rule.endpoint, arguments, refs
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Limit Ledger gateway", "version": "1", "description": _DESCRIPTION},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Made with `ledger token create`.",
                }
            },
            "schemas": schemas["$defs"],
        },
        "paths": dict(sorted(paths.items())),
    }


@bp.get("/openapi.json")
@api(answers={200: ("This document (OpenAPI 3.1).", JSON)})
def openapi_json() -> Response:
    """This document."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    doc = app.extensions.get("openapi")
    if doc is None:
        doc = app.extensions["openapi"] = document(app)
    return respond(doc)
