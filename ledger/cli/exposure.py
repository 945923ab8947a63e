"""``ledger policy exposure FILE``: the ceilings a policy sets, and the paths it leaves unguarded.

Offline like ``policy validate``: it reads the file, never Redis. Exit codes:
0 done, 1 bad input, or (with ``--require-bounded``) a path with no ceiling, so
that a policy repository's CI can refuse such a policy.
"""

from __future__ import annotations

import click

import ledger.cli.render as fmt
from ledger.policy.durations import parse_duration_ms
from ledger.policy.exposure import FLAG_TEXT, Ceiling, Report, analyse
from ledger.policy.model import load_policy_file

__all__ = ["exposure", "report_lines"]


def _duration(ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _cell(report: Report, c: Ceiling) -> str:
    if c.minor is None:
        return "none"
    return f"{report.money(c.minor)} ({c.source})"


def report_lines(report: Report, file: str) -> list[str]:
    """The report for people: a summary, the nodes, the paths and what is flagged."""
    window = _duration(report.window_ms)
    lines = [
        f"{file}: {len(report.paths)} paths (trader -> strategy -> account), "
        f"{len(report.unguarded)} unguarded; money in {report.currency}",
        "",
        "Nodes: tightest gross and net ceiling (own limit, or what bounds it from above or",
        "from the accounts it trades)",
        fmt.table(
            ["node", "gross ceiling", "net ceiling"],
            [[n.scope, _cell(report, n.gross), _cell(report, n.net)] for n in report.nodes],
        ),
        "",
        f"Paths: ceilings, and the most new orders and notional the limits let out in {window}",
        fmt.table(
            [
                "trader",
                "strategy",
                "account",
                "gross",
                "net",
                "order cap",
                "orders",
                "notional",
                "flags",
            ],
            [
                [
                    p.trader,
                    p.strategy,
                    p.account,
                    _cell(report, p.gross),
                    _cell(report, p.net),
                    _cell(report, p.order_notional),
                    "unbounded" if p.messages.minor is None else str(p.messages.minor),
                    report.money(p.notional_in_window) or "unbounded",
                    ",".join(p.flags) or "-",
                ]
                for p in report.paths
            ],
        ),
    ]
    used = sorted({f for p in report.paths for f in p.flags})
    if used:
        lines += ["", "Flags:", *(f"  {f}: {FLAG_TEXT[f]}" for f in used)]
    if report.unreachable:
        lines += ["", "No trader can send orders through: " + ", ".join(report.unreachable)]
    return lines


@click.command()
@click.argument("file")
@click.option(
    "--window",
    default="1m",
    show_default=True,
    help="How long to count new orders and notional over (250ms, 30s, 1m, 1h).",
)
@click.option(
    "--require-bounded",
    is_flag=True,
    help="Exit 1 when any path has no enforced gross or net ceiling.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def exposure(file: str, window: str, require_bounded: bool, as_json: bool) -> None:
    """Tightest gross and net ceiling of every node and trading path in FILE (offline),
    what the message limits let reach the market in --window, and every unguarded path."""
    # Bad input (the window, the file) is turned into exit 1 by the ledger group.
    window_ms = parse_duration_ms(window, "--window")
    report = analyse(load_policy_file(file), window_ms)
    if as_json:
        click.echo(fmt.to_json({"file": file, **report.to_dict()}))
    else:
        click.echo("\n".join(report_lines(report, file)))
    if require_bounded and report.unguarded:
        names = ", ".join(f"{p.trader}/{p.strategy}/{p.account}" for p in report.unguarded)
        click.echo(f"unguarded paths: {names}", err=True)
        click.get_current_context().exit(1)
