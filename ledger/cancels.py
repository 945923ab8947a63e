"""Cancel instructions at their former path; the module is :mod:`ledger.facade.cancels`."""

from ledger.facade.cancels import CancelInstruction, cancel_instructions

__all__ = ["CancelInstruction", "cancel_instructions"]
