"""``ledger policy validate / load / show``: the limits policy."""

from __future__ import annotations

import click

import ledger.cli.render as fmt
from ledger.cli.root import (
    EXIT_BAD_INPUT,
    NO_POLICY,
    BadInput,
    Settings,
    emit,
    json_option,
    live_policy,
    pass_settings,
    policy_info,
)
from ledger.errors import PolicyError
from ledger.policy.model import load_policy_file


@click.group()
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
        emit(
            as_json,
            {"file": file, "ok": False, "nodes": None, "sha256": None, "problems": exc.problems},
            exc.problems,
        )
        click.get_current_context().exit(EXIT_BAD_INPUT)
    emit(
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
    emit(
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
    info = policy_info(lg)
    if info is None:
        if as_json:
            click.echo(fmt.to_json({"revision": None}))
        raise BadInput(NO_POLICY)
    pol = live_policy(lg)
    emit(
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
