"""The policy layer: the limit model, its parsing and offline checks (no Redis)."""
