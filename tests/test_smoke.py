from ledger import Order


def test_reserve_accepts_and_counts(ledger):
    d = ledger.reserve(Order("o1", "T-ALICE", "MM-1", "ACC-1", "AAPL", "buy", "100", "187.25"))
    assert d.accepted and d.notional == 1872500
    rows = {(r.scope, r.limit_name): r.used for r in ledger.utilization("desk:EQ-CASH")}
    assert rows[("desk:EQ-CASH", "max_gross_notional")] == 1872500
