"""Exceptions. A reject is a value (:class:`ledger.facade.results.Decision`); these are failures."""

from __future__ import annotations

__all__ = [
    "LedgerError",
    "LedgerUnavailable",
    "PolicyError",
    "InvalidInput",
    "UnknownScope",
    "ReenableRefused",
]


class LedgerError(Exception):
    """Base class of every error the ledger raises."""


class LedgerUnavailable(LedgerError):
    """Redis could not be reached, timed out, or answered an error.

    Callers turn this into a fail-closed ``RISK_UNAVAILABLE`` reject. A reserve
    that timed out may still have been applied by the server: the reservation
    then errs on the safe side until ``release`` frees it or a retry with the
    same order id returns the original decision.
    """


class InvalidInput(LedgerError, ValueError):
    """An argument is malformed or would not stay exact; nothing was changed.

    ``field`` names the offending input so that callers can report it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownScope(LedgerError, ValueError):
    """A scope such as ``desk:EQ-CASH`` names no node of the loaded policy."""


class ReenableRefused(LedgerError, PermissionError):
    """A re-enable the rules forbid; nothing changed.

    Lifting a kill or re-enabling a strategy or account takes a reason and a
    person: ``system:`` identities belong to automatic triggers, and whoever
    set a state automatically cannot be the one to lift it.
    """


class PolicyError(LedgerError, ValueError):
    """A policy file is invalid. ``problems`` lists every message, each naming file and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
