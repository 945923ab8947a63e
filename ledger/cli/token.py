"""``ledger token``: create, revoke and list the gateway's API tokens.

The group reads the Redis URL and key prefix from the parent command's
context object when there is one (``redis_url``/``prefix`` attributes, or a
``ledger()`` method giving a connected :class:`ledger.Ledger`), else from
``--redis-url``/``--prefix`` or ``LEDGER_REDIS_URL``/``LEDGER_PREFIX``.

Tokens are keyed with ``LEDGER_TOKEN_SECRET``, the gateways' secret (see
:mod:`ledger.store.tokens`); without it every command exits 1 saying so.

Exit codes follow the ``ledger`` command: 0 done, 1 bad input, 2 ledger
unavailable. Errors are one line on stderr.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click
import redis

from ledger.errors import InvalidInput, LedgerUnavailable
from ledger.store.connect import connect
from ledger.store.tokens import Role, TokenStore

__all__ = ["token"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
EXIT_BAD_INPUT = 1
EXIT_UNAVAILABLE = 2


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


class _TokenGroup(click.Group):
    """Bad input (usage included) exits 1 and Redis failures exit 2, one line on stderr."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = EXIT_BAD_INPUT  # type: ignore[misc]
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_BAD_INPUT  # type: ignore[misc]
            raise
        except InvalidInput as exc:
            raise _Failure(str(exc), EXIT_BAD_INPUT) from exc
        except (LedgerUnavailable, redis.RedisError) as exc:
            raise _Failure(
                f"ledger unavailable: {' '.join(str(exc).split())}", EXIT_UNAVAILABLE
            ) from exc


def _setting(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


@click.group(cls=_TokenGroup)
@click.option(
    "--redis-url",
    default=None,
    help="Redis to use (default: the ledger command's, else env LEDGER_REDIS_URL).",
)
@click.option(
    "--prefix",
    default=None,
    help="Key prefix (default: the ledger command's, else env LEDGER_PREFIX).",
)
@click.pass_context
def token(ctx: click.Context, redis_url: str | None, prefix: str | None) -> None:
    """Create, revoke and list gateway API tokens (only their hash is stored)."""
    parent = ctx.obj
    ctx.obj = {
        "redis_url": redis_url
        or _setting(parent, "redis_url")
        or os.environ.get("LEDGER_REDIS_URL")
        or DEFAULT_URL,
        "prefix": prefix
        or _setting(parent, "prefix")
        or os.environ.get("LEDGER_PREFIX")
        or "ledger",
    }


def _store(ctx: click.Context) -> TokenStore:
    settings = ctx.find_object(dict) or {}
    try:
        client = connect(settings["redis_url"], timeout_s=2.0)
    except ValueError as exc:
        raise _Failure(f"invalid Redis URL: {exc}", EXIT_BAD_INPUT) from exc
    ctx.call_on_close(client.close)
    # The secret comes from LEDGER_TOKEN_SECRET only: an option would leave it in shell history.
    return TokenStore(client, settings["prefix"])


@token.command()
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="What the token may do.",
)
@click.option("--name", required=True, help="Who or what holds it (unique).")
@click.option(
    "--desk",
    "desks",
    multiple=True,
    metavar="ID",
    help="A desk a desk-head token may see (repeat for more).",
)
@click.option(
    "--firm",
    "firms",
    multiple=True,
    metavar="ID",
    help="Bind the token to a firm: only its accounts and orders (repeat for more; "
    "a desk-head token's firm comes from its desks).",
)
@click.pass_context
def create(
    ctx: click.Context, role: str, name: str, desks: tuple[str, ...], firms: tuple[str, ...]
) -> None:
    """Make a token and print it: it is shown this once and never stored."""
    value = _store(ctx).create(role, name, desks, firms)
    click.echo(value)
    click.echo(f"token {name!r} ({role}) created; store it now, it cannot be shown again", err=True)


@token.command()
@click.argument("name")
@click.pass_context
def revoke(ctx: click.Context, name: str) -> None:
    """Revoke the named token on every gateway at once."""
    if not _store(ctx).revoke(name):
        raise _Failure(f"no token named {name!r}", EXIT_BAD_INPUT)
    click.echo(f"token {name!r} revoked")


@token.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
@click.pass_context
def list_tokens(ctx: click.Context, as_json: bool) -> None:
    """Every token's name, role, desks, firms and creation time (never the token)."""
    principals = _store(ctx).list()
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in principals], sort_keys=True))
        return
    rows = [("NAME", "ROLE", "DESKS", "FIRMS", "CREATED")] + [
        (
            p.name,
            p.role.value,
            ",".join(sorted(p.desks)) or "-",
            ",".join(sorted(p.firms)) or "-",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.created_at_ms / 1000)),
        )
        for p in principals
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
