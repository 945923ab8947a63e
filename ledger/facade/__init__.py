"""The facade layer: :class:`~ledger.facade.client.Ledger` and its groups of operations."""
