"""The ``ledger`` command line: policy, kill switches, utilization, audit trail, check.

Every command prints aligned text for people, or one JSON document with
``--json`` for scripts (``audit tail`` always prints JSON lines); rendering
lives in :mod:`ledger.cli_format`. Exit codes:

* 0: done;
* 1: bad input (usage, unknown scope, invalid policy file, bad URL), or
  ``check`` found a breach;
* 2: the ledger is unavailable (Redis unreachable, timed out, or answered an error).

Errors are one line on stderr (a policy file: one line per problem), never a traceback.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import click
import redis

from ledger import cli_format as fmt
from ledger import durable
from ledger.audit_follow import AuditFollower
from ledger.cancels import cancel_instructions
from ledger.cli_audit import archive, lag_dicts, lag_lines, search, verify
from ledger.cli_drill import drill
from ledger.cli_exposure import exposure
from ledger.cli_life import sweep
from ledger.cli_override import override, stress
from ledger.cli_prices import prices, symbol
from ledger.cli_reconcile import reconcile
from ledger.cli_state import strategy
from ledger.cli_token import token
from ledger.client import Ledger
from ledger.errors import InvalidInput, LedgerError, LedgerUnavailable, PolicyError, UnknownScope
from ledger.policy import Policy, load_policy_file
from ledger.views import audit_json

__all__ = ["cli", "main", "EXIT_BAD_INPUT", "EXIT_UNAVAILABLE"]

EXIT_BAD_INPUT = 1
EXIT_UNAVAILABLE = 2
DEFAULT_URL = "redis://127.0.0.1:6379/0"
NO_POLICY = "no policy is loaded; load one with: ledger policy load FILE --by NAME"
_PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: The follow loop's pause; a module attribute so that tests can bound the loop.
_sleep = time.sleep


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


def _emit(as_json: bool, doc: Any, text: str | list[str]) -> None:
    """Print ``doc`` as one line of JSON, or ``text`` for people."""
    click.echo(fmt.to_json(doc) if as_json else text if isinstance(text, str) else "\n".join(text))


def _policy_info(lg: Ledger) -> dict[str, Any] | None:
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


def _live_policy(lg: Ledger) -> Policy:
    policy = lg.policy(refresh=True)
    if policy is None:
        raise BadInput(NO_POLICY)
    return policy


# -- policy ---------------------------------------------------------------------------


@cli.group()
def policy() -> None:
    """Validate, load and show the limits policy."""


@policy.command()
@click.argument("file")
@json_option
def validate(file: str, as_json: bool) -> None:
    """Check a policy FILE offline (no Redis); lists every problem."""
    try:
        pol = load_policy_file(file)
    except PolicyError as exc:
        _emit(
            as_json,
            {"file": file, "ok": False, "nodes": None, "sha256": None, "problems": exc.problems},
            exc.problems,
        )
        click.get_current_context().exit(EXIT_BAD_INPUT)
    _emit(
        as_json,
        {"file": file, "ok": True, "nodes": len(pol.nodes), "sha256": pol.sha256, "problems": []},
        f"{file}: OK ({len(pol.nodes)} nodes, sha256 {pol.sha256})",
    )


@policy.command()
@click.argument("file")
@click.option("--by", required=True, help="Who loads it (recorded in the audit trail).")
@json_option
@pass_settings
def load(settings: Settings, file: str, by: str, as_json: bool) -> None:
    """Validate FILE and swap it in as the live policy."""
    if not by.strip():
        raise click.BadParameter("must not be empty", param_hint="--by")
    pol = load_policy_file(file)
    rev = settings.ledger().load_policy(pol, by=by, source=file)
    _emit(
        as_json,
        {"file": file, "revision": rev, "sha256": pol.sha256, "by": by, "nodes": len(pol.nodes)},
        f"loaded {file}: revision {rev}, sha256 {pol.sha256} ({len(pol.nodes)} nodes)",
    )


@policy.command()
@json_option
@pass_settings
def show(settings: Settings, as_json: bool) -> None:
    """The live policy: revision, sha256, who loaded it and when."""
    lg = settings.ledger()
    info = _policy_info(lg)
    if info is None:
        if as_json:
            click.echo(fmt.to_json({"revision": None}))
        raise BadInput(NO_POLICY)
    pol = _live_policy(lg)
    _emit(
        as_json,
        info
        | {
            "currency": pol.currency,
            "minor_units": pol.minor_units,
            "nodes": len(pol.nodes),
            "firms": pol.firms,
        },
        fmt.policy_lines(info, pol),
    )


# -- kill switches --------------------------------------------------------------------

_by = click.option("--by", required=True, help="Who acts (recorded with the switch).")
_reason = click.option("--reason", required=True, help="Why (recorded with the switch).")


def _switch(
    op: str,
    settings: Settings,
    scope: str,
    by: str,
    reason: str,
    as_json: bool,
    cancel_open: bool = False,
) -> None:
    lg = settings.ledger()
    cancels = None
    if op == "kill":
        result = lg.kill(scope, by=by, reason=reason)
        if cancel_open:
            cancels = cancel_instructions(lg, result)
    else:
        result = lg.unkill(scope, by=by, reason=reason)
        pol = lg.policy()
        if result.already and scope != "global" and (pol is None or pol.node(scope) is None):
            raise UnknownScope(f"{scope}: no such node in the loaded policy, and no kill on it")
    _emit(
        as_json,
        fmt.kill_dict(op, result, by, reason, cancels),
        fmt.kill_lines(op, result, by, reason, cancels),
    )


def _one_scope(scope: str | None, scope_option: str | None) -> str:
    """SCOPE given as the argument or as ``--scope``, but not two different ones."""
    if scope is not None and scope_option is not None and scope != scope_option:
        raise click.UsageError(f"two scopes given: {scope} and --scope {scope_option}")
    chosen = scope if scope is not None else scope_option
    if chosen is None:
        raise click.UsageError("Missing argument 'SCOPE' (or --scope).")
    return chosen


_scope = click.argument("scope", required=False)
_scope_option = click.option(
    "--scope", "scope_option", metavar="SCOPE", help="SCOPE, given as an option."
)


@cli.command()
@_scope
@_scope_option
@_by
@_reason
@click.option(
    "--cancel-open",
    is_flag=True,
    help="Print a cancel instruction per open order (account, strategy, trader, "
    "symbol, side, quantity left).",
)
@json_option
@pass_settings
def kill(
    settings: Settings,
    scope: str | None,
    scope_option: str | None,
    by: str,
    reason: str,
    cancel_open: bool,
    as_json: bool,
) -> None:
    """Stop new orders under SCOPE and list its open orders.

    SCOPE is global, or kind:id such as desk:EQ-CASH. The open orders printed
    are to be cancelled at the venue.
    """
    _switch("kill", settings, _one_scope(scope, scope_option), by, reason, as_json, cancel_open)


@cli.command()
@_scope
@_scope_option
@_by
@_reason
@json_option
@pass_settings
def unkill(
    settings: Settings,
    scope: str | None,
    scope_option: str | None,
    by: str,
    reason: str,
    as_json: bool,
) -> None:
    """Lift the kill switch on SCOPE.

    Takes a person: a system: identity (an automatic trigger) never may, nor
    the identity that set an automatic kill.
    """
    _switch("unkill", settings, _one_scope(scope, scope_option), by, reason, as_json)


@cli.command()
@json_option
@pass_settings
def status(settings: Settings, as_json: bool) -> None:
    """Active kill switches, strategy and account states, the policy revision, archive lag.

    Each kill and state shows who set it, when, and why; an automatic disable
    also shows its cause.
    """
    lg = settings.ledger()
    info, kills, states = _policy_info(lg), lg.kills(), lg.states.list()
    lags = lg.archive_lag()
    _emit(
        as_json,
        fmt.status_dict(info, kills, states) | {"archive": lag_dicts(lags)},
        [*fmt.status_lines(info, kills, states), *lag_lines(lags)],
    )


@cli.command()
@click.argument("scope", default="global")
@json_option
@pass_settings
def utilization(settings: Settings, scope: str, as_json: bool) -> None:
    """Used against limit under SCOPE (default: global).

    One row per node and limit; money in major units of the policy currency.
    """
    lg = settings.ledger()
    pol = _live_policy(lg)
    rows = lg.utilization(scope)
    pol = lg.policy() or pol  # the one the rows were computed with
    title = f"utilization under {scope} (money in {pol.currency})"
    table = fmt.utilization_table(rows, pol)
    _emit(as_json, fmt.utilization_dict(scope, rows, pol), [title, table])


# -- audit ----------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """Read the audit trail."""


def _follow(lg: Ledger, shown: list[dict[str, Any]], count: int, interval_s: float) -> None:
    """Print every record appended after ``shown`` until Ctrl-C."""
    follower = AuditFollower(lg, shown, count)
    try:
        while True:
            for record in follower.poll():
                click.echo(audit_json(record))
            if not follower.behind:
                _sleep(interval_s)
    except KeyboardInterrupt:
        return


@audit.command()
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many of the newest records to print.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records until Ctrl-C.")
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@json_option
@pass_settings
def tail(settings: Settings, count: int, follow: bool, interval_s: float, as_json: bool) -> None:
    """The newest audit records of every stream, oldest first, as JSON lines (always)."""
    lg = settings.ledger()
    records = lg.audit_tail(count)
    for record in records:
        click.echo(audit_json(record))
    if follow:
        _follow(lg, records, count, interval_s)


@cli.command()
@json_option
@pass_settings
def check(settings: Settings, as_json: bool) -> None:
    """Verify aggregates and limits; exit 1 naming each breach.

    Every node's aggregates must equal the sums over its orders, and no
    enforced limit may be exceeded. With no policy loaded there is nothing
    to check against: that exits 1 too, saying so.
    """
    lg = settings.ledger()
    if lg.policy(refresh=True) is None:
        raise BadInput(f"nothing checked: {NO_POLICY}")
    report = lg.check()
    _emit(as_json, fmt.check_dict(report), fmt.check_lines(report))
    if not report.ok:
        click.get_current_context().exit(EXIT_BAD_INPUT)


policy.add_command(exposure)
audit.add_command(archive)
audit.add_command(verify)
audit.add_command(search)
cli.add_command(token)
cli.add_command(prices)
cli.add_command(symbol)
cli.add_command(strategy)
cli.add_command(override)
cli.add_command(stress)
cli.add_command(drill)
cli.add_command(reconcile)
cli.add_command(sweep)


def main() -> None:
    """Console-script entry point (``ledger``)."""
    cli(prog_name="ledger")


if __name__ == "__main__":
    main()
