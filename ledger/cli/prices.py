"""``ledger prices set|show`` and ``ledger symbol resume``: reference prices and the jump halt.

The commands run under the ``ledger`` group (:mod:`ledger.cli`), whose
context object connects the ledger and turns errors into its exit codes:
0 done, 1 bad input (or no policy loaded), 2 the ledger is unavailable.
"""

from __future__ import annotations

from typing import Any

import click

import ledger.cli.render as fmt
from ledger.errors import InvalidInput, LedgerError
from ledger.facade.prices import PriceSet, PriceStatus, ReferencePrice, Resume

__all__ = ["prices", "symbol"]

NO_FIRMS = "no firm has a policy, so no price was stored; load one with: ledger policy load FILE"

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _emit(as_json: bool, doc: Any, lines: list[str]) -> None:
    click.echo(fmt.to_json(doc) if as_json else "\n".join(lines))


def _pairs(args: tuple[str, ...]) -> dict[str, str]:
    """``SYMBOL PRICE``, or any number of ``SYMBOL=PRICE``."""
    if len(args) == 2 and not any("=" in a for a in args):
        return {args[0]: args[1]}
    out: dict[str, str] = {}
    for arg in args:
        sym, eq, price = arg.partition("=")
        if not eq:
            raise InvalidInput("prices", f"{arg!r}: give SYMBOL PRICE, or SYMBOL=PRICE pairs")
        if sym in out:
            raise InvalidInput("prices", f"{sym} is given twice")
        out[sym] = price
    return out


def _percent(bps: int | None) -> str:
    return "-" if bps is None else f"{bps // 100}.{bps % 100:02d}%"


def _set_lines(rows: list[PriceSet], halted: list[str]) -> list[str]:
    table = fmt.table(
        ["FIRM", "SYMBOL", "PRICE", "JUMP", "STATUS"],
        [(r.firm, r.symbol, r.price, _percent(r.jump_bps), r.status.value) for r in rows],
        right={2, 3},
    )
    lines = [table]
    for sym in halted:
        lines.append(
            f"{sym} HALTED: no order trades in it until ops run "
            f"`ledger symbol resume {sym} --by NAME --reason TEXT`"
        )
    return lines


def _state(row: ReferencePrice) -> str:
    if row.halt is not None:
        h = row.halt
        return f"halted by {h.by} at {fmt.format_ms(h.at_ms)}: {h.why}"
    if row.price is None:
        return "no price"
    return "stale" if row.stale else "ok"


@click.group()
def prices() -> None:
    """Set and show reference prices (a jump too far halts the symbol)."""


@prices.command(name="set")
@click.argument("pairs", nargs=-1, required=True, metavar="SYMBOL PRICE | SYMBOL=PRICE...")
@click.option("--by", default=None, help="Who sets them (recorded; default: cli).")
@_json
@click.pass_obj
def set_prices(settings: Any, pairs: tuple[str, ...], by: str | None, as_json: bool) -> None:
    """Store prices in every firm; prints each firm's status and jump.

    A price that moves further than the firm's reference_prices.max_jump_pct
    from the last one is stored and halts the symbol in that firm.
    """
    lg = settings.ledger()
    who = lg.actor if by is None else by
    rows = lg.prices.set(_pairs(pairs), by=who)
    if not rows:
        raise LedgerError(NO_FIRMS)
    halted = sorted({r.symbol for r in rows if r.status is PriceStatus.HALTED})
    doc = {"by": who, "results": [r.to_dict() for r in rows], "halted": halted}
    _emit(as_json, doc, _set_lines(rows, halted))


@prices.command()
@click.argument("symbols", nargs=-1, metavar="[SYMBOL]...")
@_json
@click.pass_obj
def show(settings: Any, symbols: tuple[str, ...], as_json: bool) -> None:
    """Price, age by server time and halt per firm and SYMBOL (default: every symbol)."""
    rows = settings.ledger().prices.get(list(symbols) or None)
    table = fmt.table(
        ["FIRM", "SYMBOL", "PRICE", "SET", "AGE", "STATE"],
        [
            (
                r.firm,
                r.symbol,
                r.price or "-",
                fmt.format_ms(r.set_at_ms),
                "-" if r.age_ms is None else f"{r.age_ms / 1000:.1f}s",
                _state(r),
            )
            for r in rows
        ],
        right={2, 4},
    )
    _emit(as_json, {"prices": [r.to_dict() for r in rows]}, [table] if rows else ["no prices"])


@click.group()
def symbol() -> None:
    """Lift a symbol's halt."""


def _resume_line(result: Resume) -> str:
    if result.already:
        return f"{result.symbol} is not halted in any firm; nothing changed"
    return f"resumed {result.symbol} in {', '.join(result.firms)} (by {result.by}: {result.reason})"


@symbol.command()
@click.argument("name", metavar="SYMBOL")
@click.option("--by", required=True, help="Who resumes it (recorded).")
@click.option("--reason", required=True, help="Why (recorded).")
@_json
@click.pass_obj
def resume(settings: Any, name: str, by: str, reason: str, as_json: bool) -> None:
    """Lift the halt a reference price jump put on SYMBOL, in every firm."""
    result = settings.ledger().prices.resume(name, by=by, reason=reason)
    _emit(as_json, result.to_dict(), [_resume_line(result)])
