"""Operator tools built on the facade: drills, the audit follower, the metrics snapshot."""
