"""``ledger audit tail / archive / verify / search``: the audit trail, and its archive on disk.

``tail`` reads the streams in Redis; the archive is :mod:`ledger.audit`.

``archive`` copies every audit stream into hash-chained daily segments;
``verify`` and ``search`` read a directory only and never connect to Redis.
The commands run under the ``ledger`` command, which connects, prints errors
as one line and sets the exit codes (0 done, 1 bad input or a broken chain,
2 ledger unavailable).
"""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

import click

import ledger.audit as arc
import ledger.cli.render as fmt
from ledger.cli.root import Settings, json_option, pass_settings
from ledger.facade.client import Ledger
from ledger.facade.views import audit_json
from ledger.ops.audit_follow import AuditFollower

__all__ = ["audit", "archive", "verify", "search", "lag_dicts", "lag_lines"]

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _settings() -> Any:
    # The root command's settings own the connection; reached by duck type
    # because ledger.cli imports this module, never the other way round.
    return click.get_current_context().find_root().obj


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the segments go (DIR/<firm or _global>/<YYYY-MM-DD>.jsonl[.gz]).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep archiving new records until stopped.")
@click.option(
    "--by",
    "consumer",
    default="archiver",
    show_default=True,
    help="Who archives: the consumer name in the 'archive' group.",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.01),
    default=0.5,
    show_default=True,
    help="Seconds between polls once every stream is drained (--follow).",
)
@_json
def archive(directory: Path, follow: bool, consumer: str, interval_s: float, as_json: bool) -> None:
    """Append every audit record to hash-chained daily segment files.

    Without --follow, archives what the streams hold and stops. Records are
    written and fsynced before Redis may drop them; a restart resumes where
    the files end, without a gap or a duplicate.
    """
    if not consumer.strip():
        raise click.BadParameter("must not be empty", param_hint="--by")
    lg = _settings().ledger()
    archiver = arc.Archiver(lg.redis, lg.keys, directory, consumer=consumer)
    # `docker stop` sends SIGTERM: stop as on Ctrl-C, closing files and freeing the lease.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        total = archiver.run(follow=follow, interval_s=interval_s)
    except KeyboardInterrupt:
        total = sum(c.written for c in archiver.chains.values())
    finally:
        signal.signal(signal.SIGTERM, previous)
    doc = {"dir": str(directory), "records": total, "streams": len(archiver.chains)}
    line = f"archived {total} record(s) of {len(archiver.chains)} stream(s) into {directory}"
    click.echo(fmt.to_json(doc) if as_json else line)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--against-redis",
    is_flag=True,
    help="Also check that each chain reaches what the archiver acknowledged in Redis "
    "(lines removed from the end).",
)
@_json
def verify(directory: Path, against_redis: bool, as_json: bool) -> None:
    """Recompute every chain in DIRECTORY; exit 1 naming the first break."""
    if not directory.is_dir():
        raise click.BadParameter(f"{directory}: no such directory", param_hint="DIRECTORY")
    report = arc.verify(directory)
    if report.ok and against_redis:
        lg = _settings().ledger()
        tail = arc.verify_tail(lg.redis, lg.keys, directory)
        report = dataclasses.replace(report, first_break=tail)
    if as_json:
        click.echo(fmt.to_json(report.to_dict()))
    elif report.first_break is None:
        click.echo(
            f"OK: {report.records} record(s) in {report.segments} segment(s) of "
            f"{report.streams} stream(s), every chain intact"
        )
    else:
        click.echo(f"BROKEN: {report.first_break}")
    if not report.ok:
        click.get_current_context().exit(1)


def _ms(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return arc.parse_time_ms(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from exc


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--order", "order_id", help="Only records of this order id.")
@click.option("--since", help="From this time: ISO 8601 (UTC unless given) or ms.")
@click.option("--until", help="Up to this time, inclusive.")
@click.option("--by", help="Only records by this actor.")
@_json
def search(
    directory: Path,
    order_id: str | None,
    since: str | None,
    until: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Archived records matching every filter, oldest first (gzipped segments included)."""
    if not directory.is_dir():
        raise click.BadParameter(f"{directory}: no such directory", param_hint="DIRECTORY")
    if order_id is None and since is None and until is None and by is None:
        raise click.UsageError("give at least one of --order, --since, --until, --by")
    found = arc.search(directory, order_id, _ms(since, "--since"), _ms(until, "--until"), by)
    for doc in found:
        if as_json:
            click.echo(fmt.to_json(doc))
        else:
            rec = doc["record"] if isinstance(doc["record"], dict) else {}
            at = fmt.format_ms(int(doc["id"].split("-")[0]))
            rest = {k: v for k, v in rec.items() if k not in ("op", "by", "code")}
            click.echo(
                f"{at}  {doc['stream']}  {doc['id']}  {rec.get('op')}  {rec.get('code')}  "
                f"by {rec.get('by')}  {fmt.to_json(rest)}"
            )


def lag_dicts(lags: list[arc.StreamLag]) -> list[dict[str, Any]]:
    return [x.to_dict() for x in lags]


def lag_lines(lags: list[arc.StreamLag]) -> list[str]:
    """``ledger status`` lines: per stream, its length and how much is not archived."""
    lines = ["audit archive:"]
    for x in lags:
        name = x.firm if x.firm is not None else "global"
        state = "no archiver" if x.backlog is None else f"{x.backlog} not archived"
        lines.append(f"  {name}: {x.length} in stream, {state}")
    return lines


#: The follow loop's pause; a module attribute so that tests can bound the loop.
_sleep = time.sleep


@click.group()
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


audit.add_command(archive)
audit.add_command(verify)
audit.add_command(search)
