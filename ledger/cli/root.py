"""The root ``ledger`` command: global options, the ledger it connects on first use, exit codes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import click
import redis

import ledger.cli.render as fmt
import ledger.store.durable as durable
from ledger.errors import InvalidInput, LedgerError, LedgerUnavailable, PolicyError, UnknownScope
from ledger.facade.client import Ledger
from ledger.policy.model import Policy

EXIT_BAD_INPUT = 1
EXIT_UNAVAILABLE = 2
DEFAULT_URL = "redis://127.0.0.1:6379/0"
NO_POLICY = "no policy is loaded; load one with: ledger policy load FILE --by NAME"
_PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class BadInput(click.ClickException):
    exit_code = EXIT_BAD_INPUT


class Unavailable(click.ClickException):
    exit_code = EXIT_UNAVAILABLE


class _BadUsage(click.UsageError):
    exit_code = EXIT_BAD_INPUT


@dataclass
class Settings:
    """The global options; the ledger connects on first use (``policy validate`` never does)."""

    redis_url: str
    prefix: str
    cluster: bool
    timeout_s: float
    _ledger: Ledger | None = field(default=None, repr=False)

    def ledger(self) -> Ledger:
        if self._ledger is None:
            try:
                durability = durable.from_env()
            except ValueError as exc:
                raise BadInput(str(exc)) from exc
            try:
                self._ledger = Ledger.from_url(
                    self.redis_url,
                    timeout_s=self.timeout_s,
                    cluster=self.cluster,
                    prefix=self.prefix,
                    actor="cli",
                    **durability.as_kwargs(),
                )
            except ValueError as exc:
                url = fmt.safe_url(self.redis_url)
                raise BadInput(f"invalid --redis-url {url}: {exc}") from exc
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.redis.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _usage(exc: click.UsageError) -> Exception:
    """Usage errors exit 1 like any bad input; a bare group prints its help and exits 0."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        click.echo(exc.format_message())
        return click.exceptions.Exit(0)
    return _BadUsage(exc.format_message(), exc.ctx)


class _LedgerGroup(click.Group):
    """Turns ledger and Redis failures into one-line errors with the documented exit codes."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _usage(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage(exc) from exc
        except (LedgerUnavailable, redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            settings = ctx.find_object(Settings)
            where = f" at {fmt.safe_url(settings.redis_url)}" if settings else ""
            # Worded as the facade words a driver error: "ConnectionError: ...".
            what = (
                _one_line(exc)
                if isinstance(exc, LedgerUnavailable)
                else (f"{type(exc).__name__}: {_one_line(exc)}")
            )
            raise Unavailable(f"ledger unavailable{where}: {what}") from exc
        except PolicyError as exc:
            raise BadInput("\n".join(exc.problems)) from exc
        except UnknownScope as exc:
            raise BadInput(f"unknown scope {_one_line(exc)}") from exc
        except (InvalidInput, LedgerError) as exc:
            raise BadInput(_one_line(exc)) from exc


def _check_prefix(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _PREFIX.fullmatch(value):
        raise click.BadParameter("must be 1-64 characters of letters, digits and ._:- (no braces)")
    return value


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group(cls=_LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--redis-url",
    envvar="LEDGER_REDIS_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Redis to use (env LEDGER_REDIS_URL): redis:// or rediss:// (TLS); an ACL user and "
    "password in it or in LEDGER_REDIS_USERNAME / LEDGER_REDIS_PASSWORD.",
)
@click.option(
    "--prefix",
    envvar="LEDGER_PREFIX",
    default="ledger",
    show_default=True,
    callback=_check_prefix,
    help="Key prefix (env LEDGER_PREFIX).",
)
@click.option(
    "--cluster/--no-cluster",
    default=False,
    show_default=True,
    help="Redis Cluster client and key layout.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds any one Redis call may take.",
)
@click.version_option(package_name="limit-ledger")
@click.pass_context
def cli(ctx: click.Context, redis_url: str, prefix: str, cluster: bool, timeout_s: float) -> None:
    """Limit Ledger: pre-trade risk budgets, kill switches and audit trail on Redis."""
    settings = Settings(redis_url, prefix, cluster, timeout_s)
    ctx.obj = settings
    ctx.call_on_close(settings.close)


pass_settings = click.make_pass_decorator(Settings)


def emit(as_json: bool, doc: Any, text: str | list[str]) -> None:
    """Print ``doc`` as one line of JSON, or ``text`` for people."""
    click.echo(fmt.to_json(doc) if as_json else text if isinstance(text, str) else "\n".join(text))


def policy_info(lg: Ledger) -> dict[str, Any] | None:
    """Revision, sha256 and who/when/source of the loaded policy; None if none is loaded."""
    info = lg.policy_info()
    if info is None:
        return None
    return {
        "revision": info["rev"],
        "sha256": info["sha256"],
        "by": info["by"],
        "source": info["source"],
        "at_ms": info["at_ms"],
        "at": fmt.format_ms(info["at_ms"]),
    }


def live_policy(lg: Ledger) -> Policy:
    """The loaded policy, read afresh; bad input when none is loaded."""
    policy = lg.policy(refresh=True)
    if policy is None:
        raise BadInput(NO_POLICY)
    return policy
