"""``ledger drill kill|storm|entitlement|collar|failover``: prove the controls hold on a live
deployment.

Probes go through the gateways named with ``--gateway URL`` (repeatable) with
an ``order-entry`` token (``--token`` or ``LEDGER_DRILL_TOKEN``), on a drill
account of the policy (:mod:`ledger.ops.drills`). Exit codes: 0 every control
held, 1 bad input or a control that did not hold, 2 ledger unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

import ledger.cli.render as fmt
from ledger.facade.client import Ledger
from ledger.ops.drills import (
    MAX_BURST,
    DrillReport,
    Gateway,
    collar_drill,
    entitlement_drill,
    failover_drill,
    kill_drill,
    storm_drill,
)

__all__ = ["drill"]

EXIT_NOT_HELD = 1


def _ledger() -> Ledger:
    # The root command's settings own the connection (ledger.cli imports this module).
    ledger: Ledger = click.get_current_context().find_root().obj.ledger()
    return ledger


def report_lines(r: DrillReport) -> list[str]:
    t = r.target
    lines = [
        f"drill {r.drill} {r.run_id} by {r.by}: {'HELD' if r.held else 'FAILED'}",
        f"target: firm {t.firm}, desk {t.desk}, account {t.account} (strategy {t.strategy}, "
        f"trader {t.trader}, symbol {t.symbol}); scope {r.scope}",
    ]
    rows = [
        [
            p.gateway,
            p.case,
            p.expected,
            p.reason or "-",
            str(p.status) if p.status is not None else "-",
            f"{p.ms:.1f}",
            "yes" if p.held else "NO",
            p.note,
        ]
        for p in r.probes
    ]
    if rows:
        headers = ["gateway", "probe", "expected", "got", "status", "ms", "held", "note"]
        lines.append(fmt.table(headers, rows, right={4, 5}))
    for name, value in r.metrics.items():
        lines.append(f"{name}: {value}")
    lines += [f"note: {n}" for n in r.notes]
    lines += [f"FAILED: {f}" for f in r.failures]
    return lines


def _run(as_json: bool, go: Callable[[], DrillReport]) -> None:
    report = go()
    click.echo(fmt.to_json(report.to_dict()) if as_json else "\n".join(report_lines(report)))
    if not report.held:
        raise click.exceptions.Exit(EXIT_NOT_HELD)


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option(
                "--gateway",
                "gateways",
                multiple=True,
                required=True,
                help="Base URL of a gateway; repeat for each one.",
            ),
            click.option(
                "--token",
                envvar="LEDGER_DRILL_TOKEN",
                required=True,
                help="An order-entry token (env LEDGER_DRILL_TOKEN).",
            ),
            click.option("--by", required=True, help="Who runs the drill (audited)."),
            click.option("--account", default=None, help="The drill account (default: the first)."),
            click.option(
                "--http-timeout",
                "http_timeout_s",
                type=click.FloatRange(min=0, min_open=True),
                default=5.0,
                show_default=True,
                help="Seconds a gateway may take to answer.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts."),
        )
    ):
        fn = option(fn)
    return fn


def _gateways(urls: tuple[str, ...], token: str, timeout_s: float) -> list[Gateway]:
    return [Gateway(url, token, timeout_s) for url in urls]


@click.group()
def drill() -> None:
    """Drills on a drill account: kill, storm, entitlement, collar, failover (README "Drills")."""


@drill.command("kill")
@_options
@click.option("--scope", default=None, help="What to kill (default: the drill account).")
def kill_cmd(
    gateways: tuple[str, ...],
    token: str,
    by: str,
    account: str | None,
    http_timeout_s: float,
    as_json: bool,
    scope: str | None,
) -> None:
    """Kill, prove every gateway refuses a probe (time to refuse), lift the kill."""
    gws = _gateways(gateways, token, http_timeout_s)
    _run(as_json, lambda: kill_drill(_ledger(), gws, by=by, account=account, scope=scope))


@drill.command("storm")
@_options
@click.option(
    "--max",
    "max_orders",
    type=click.IntRange(1, MAX_BURST),
    default=1000,
    show_default=True,
    help="Most new orders (and cancels) the drill sends.",
)
@click.option(
    "--max-wait",
    "max_wait_s",
    type=click.FloatRange(min=0),
    default=15.0,
    show_default=True,
    help="Seconds the cancel phase may wait for the message windows.",
)
def storm_cmd(
    gateways: tuple[str, ...],
    token: str,
    by: str,
    account: str | None,
    http_timeout_s: float,
    as_json: bool,
    max_orders: int,
    max_wait_s: float,
) -> None:
    """A bounded burst: MESSAGE_RATE must stop it, then CANCEL_RATIO where configured."""
    gws = _gateways(gateways, token, http_timeout_s)
    _run(
        as_json,
        lambda: storm_drill(
            _ledger(), gws, by=by, account=account, max_orders=max_orders, max_wait_s=max_wait_s
        ),
    )


def _probe_command(name: str, run: Callable[..., Any], doc: str) -> None:
    """``ledger drill NAME``: probes that must meet one reject code, nothing else to set."""

    @drill.command(name, help=doc)
    @_options
    def command(
        gateways: tuple[str, ...],
        token: str,
        by: str,
        account: str | None,
        http_timeout_s: float,
        as_json: bool,
    ) -> None:
        gws = _gateways(gateways, token, http_timeout_s)
        _run(as_json, lambda: run(_ledger(), gws, by=by, account=account))


_probe_command(
    "entitlement",
    entitlement_drill,
    "Probes breaking an entitlement must be refused with NOT_ENTITLED.",
)
_probe_command(
    "collar", collar_drill, "A probe priced beyond the collar must be refused with PRICE_COLLAR."
)


@drill.command("failover")
@click.option(
    "--gateway",
    "gateways",
    multiple=True,
    help="Base URL of a gateway to probe too; repeat for each one.",
)
@click.option(
    "--token",
    envvar="LEDGER_DRILL_TOKEN",
    default=None,
    help="An order-entry token, for --gateway (env LEDGER_DRILL_TOKEN).",
)
@click.option("--by", required=True, help="Who runs the drill (audited).")
@click.option("--account", default=None, help="The drill account (default: the first).")
@click.option(
    "--max-window",
    "max_window_s",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    default=30.0,
    show_default=True,
    help="Seconds a prober may find the ledger unavailable before the drill fails.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the new primary and for every prober to be accepted again.",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.01, max=10),
    default=0.1,
    show_default=True,
    help="Seconds between one prober's probes.",
)
@click.option(
    "--http-timeout",
    "http_timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds a gateway may take to answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def failover_cmd(
    gateways: tuple[str, ...],
    token: str | None,
    by: str,
    account: str | None,
    max_window_s: float,
    timeout_s: float,
    interval_s: float,
    http_timeout_s: float,
    as_json: bool,
) -> None:
    """SENTINEL FAILOVER under probes: the unavailability window and acknowledged probes lost.

    The ledger's --redis-url must be a redis+sentinel:// URL. Probes go through
    the library and every --gateway. Fails (exit 1) when an acknowledged probe
    was lost or a prober's window exceeds --max-window.
    """
    if gateways and not token:
        raise click.UsageError("--gateway needs --token (or LEDGER_DRILL_TOKEN)")
    gws = _gateways(gateways, token or "", http_timeout_s)
    url: str = click.get_current_context().find_root().obj.redis_url
    _run(
        as_json,
        lambda: failover_drill(
            _ledger(),
            url,
            gws,
            by=by,
            account=account,
            max_window_s=max_window_s,
            timeout_s=timeout_s,
            interval_s=interval_s,
        ),
    )
