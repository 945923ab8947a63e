"""The ``api`` route decorator: the body checked against its model, and what the route answers.

One declaration per route serves both the request's validation and the
OpenAPI document (:mod:`gateway.openapi` reads what :func:`api` records on
the view). A refused body is a 400 whose message names the field, the same
at every depth: ``unknown field(s): by``, ``missing field(s): qty``,
``prices[1].price: must be a string or integer, not a number (1.5 cannot be
kept exact)``, ``orders[2]: must be an object, not an array``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from gateway.errors import invalid
from gateway.fields import EXACT, Says, kind
from gateway.wire import read_body

__all__ = ["api", "Spec", "parse", "explain"]

F = TypeVar("F", bound=Callable[..., Any])
Answer = tuple[str, type[BaseModel] | str | None]
M = TypeVar("M", bound=BaseModel)

#: Arrays whose items are numbered from 1 in messages, as the answer's ``leg`` numbers them.
_FROM_ONE = frozenset({"orders"})


@dataclass(frozen=True)
class Spec:
    """What :func:`api` records on a view for the OpenAPI document."""

    body: type[BaseModel] | None
    #: The body may be left out (an empty body is ``{}``).
    optional: bool
    #: Status code -> (description, model of the answer: None for the error's shape, a
    #: media type for an answer that is not JSON).
    answers: dict[int, Answer]
    #: Query parameters: name -> description.
    query: dict[str, str] = field(default_factory=dict)
    #: Path parameters: name -> the parameter's ``schema`` and ``description``.
    path: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Who may call, where :func:`gateway.auth.requires` does not say it.
    roles: tuple[str, ...] = ()
    #: OpenAPI security requirements, where they are not simply the bearer token of ``roles``.
    security: list[dict[str, list[str]]] | None = None


def api(
    body: type[BaseModel] | None = None,
    *,
    answers: Mapping[int, Answer],
    optional: bool = False,
    query: dict[str, str] | None = None,
    path: dict[str, dict[str, Any]] | None = None,
    roles: tuple[str, ...] = (),
    security: list[dict[str, list[str]]] | None = None,
) -> Callable[[F], F]:
    """Route decorator: with ``body``, the view gets the checked body as its first argument."""
    spec = Spec(body, optional, dict(answers), query or {}, path or {}, roles, security)

    def decorate(view: F) -> F:
        if body is None:
            view.api = spec  # type: ignore[attr-defined]
            return view

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return view(parse(body, required=not optional), *args, **kwargs)

        wrapper.api = spec  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def parse(model: type[M], *, required: bool = True) -> M:
    """The request body as ``model``; a 400 naming the first bad field."""
    try:
        return model.model_validate(read_body(required=required))
    except ValidationError as exc:
        raise invalid(explain(model, exc.errors(include_url=False))) from None


def explain(model: type[BaseModel], errors: Sequence[Any], where: tuple[Any, ...] = ()) -> str:
    """One message for pydantic's errors at ``where``: unknown fields, then missing, then the first.

    A null counts as missing, as it always has: ``{"qty": null}`` is no qty.
    """
    depth = len(where)
    here = [e for e in errors if e["loc"][:depth] == where and len(e["loc"]) > depth]
    at = [e for e in here if len(e["loc"]) == depth + 1 or isinstance(e["loc"][depth + 1], str)]
    unknown = sorted(str(e["loc"][depth]) for e in at if e["type"] == "extra_forbidden")
    if unknown:
        return _prefix(where) + "unknown field(s): " + ", ".join(unknown)
    missing = list(dict.fromkeys(e["loc"][depth] for e in at if _missing(model, e, depth)))
    if missing:
        return _prefix(where) + "missing field(s): " + ", ".join(missing)
    first = here[0]
    name = first["loc"][depth]
    info = model.model_fields[name]
    if len(first["loc"]) > depth + 1 and isinstance(first["loc"][depth + 1], int):
        item = (name, first["loc"][depth + 1])
        if len(first["loc"]) == depth + 2:
            return _say(_prefix((*where, *item)), "must be an object", first)
        return explain(_item_model(info.annotation), errors, (*where, *item))
    says = _says([*info.metadata, info.annotation])
    wrong = says.too_many if first["type"] == "too_long" and says.too_many else says.wrong
    return _say(_prefix((*where, name)), wrong, first, exact=says is EXACT)


def _says(found: list[Any]) -> Says:
    """The field's :class:`Says`, wherever its annotation keeps it (``Text | None`` too)."""
    for item in found:
        if isinstance(item, Says):
            return item
        inner = [*getattr(item, "__metadata__", ()), *get_args(item)]
        if inner and (says := _says(inner)) is not _UNSAID:
            return says
    return _UNSAID


_UNSAID = Says("is not valid")


def _missing(model: type[BaseModel], error: Any, depth: int) -> bool:
    if error["type"] == "missing":
        return True
    return error["input"] is None and model.model_fields[error["loc"][depth]].is_required()


def _say(prefix: str, wrong: str, error: Any, *, exact: bool = False) -> str:
    value = error["input"]
    if exact and isinstance(value, float):
        return (
            f"{prefix}numbers must be strings or integers, not floats "
            f"({value!r} cannot be kept exact)"
        )
    text = prefix + wrong.replace("{input!r}", repr(value))
    # A value of the wrong JSON type says what it was.
    if error["type"].endswith("_type") or exact:
        text += f", not {kind(value)}"
    return text


def _prefix(where: tuple[Any, ...]) -> str:
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part + 1 if out.rpartition('.')[2] in _FROM_ONE else part}]"
        else:
            out += f".{part}" if out else str(part)
    return f"{out}: " if out else ""


def _item_model(annotation: Any) -> type[BaseModel]:
    """The model of an array's items (``list[PriceItem]``)."""
    found = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    if not found:
        raise TypeError(f"no model in {annotation!r}")
    return found[0]
