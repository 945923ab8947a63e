"""The example policies of a futures desk and a crypto desk load and decide as their
comments say: multiplied notional, message windows of any length, reduce-only exits."""

from __future__ import annotations

from pathlib import Path

from ledger import Ledger, Order, Reason
from ledger.policy.model import load_policy_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(lg: Ledger, name: str, prices: dict[str, str]) -> None:
    lg.load_policy(load_policy_file(EXAMPLES / name), by="test", source=f"examples/{name}")
    lg.prices.set(prices, by="feed")


def test_futures_desk(lg: Ledger) -> None:
    load(lg, "futures-desk.yaml", {"ES": "5000", "NQ": "18000", "MES": "5000", "ZN": "110.5"})

    def fut(order_id: str, symbol: str, qty: str, price: str, **kw: object) -> Order:
        return Order(order_id, "T-CARA", "INDEX-ARB", "FUT-1", symbol, "buy", qty, price, **kw)  # type: ignore[arg-type]

    # One ES contract at 5,000 points is 250,000.00; NQ at 20 per point; ZN at 1,000.
    assert lg.reserve(fut("f1", "ES", "1", "5000")).notional == 25_000_000
    assert lg.reserve(fut("f2", "NQ", "1", "18000")).notional == 36_000_000
    assert lg.reserve(fut("f3", "ZN", "2", "110.5")).notional == 22_100_000
    # Caps count multiplied notional: 2 ES = 500,000.00 > the account's 400,000.00.
    d = lg.reserve(fut("f4", "ES", "2", "5000"))
    assert (d.reason, d.scope) == (Reason.MAX_ORDER_NOTIONAL, "account:FUT-1")
    # An exit flagged reduce-only has nothing to reduce in MES.
    d = lg.reserve(fut("f5", "MES", "1", "5000", reduce_only=True))
    assert (d.reason, d.scope) == (Reason.REDUCE_ONLY, "firm:FUTCO")
    names = {r.limit_name for r in lg.utilization("strategy:INDEX-ARB")}
    assert {"messages.all.5s", "messages.all.per_minute", "messages.all.per_hour"} <= names
    assert lg.check().ok


def test_crypto_desk(lg: Ledger) -> None:
    load(lg, "crypto-desk.yaml", {"BTCF": "64250.50", "ETHF": "3400"})

    def coin(order_id: str, symbol: str, qty: str, price: str) -> Order:
        return Order(order_id, "T-DEV", "BASIS", "CX-1", symbol, "sell", qty, price, venue="CME")

    # 3 x 64,250.50 x 0.1 = 19,275.15; 5 x 3,400 x 0.5 = 8,500.00.
    assert lg.reserve(coin("c1", "BTCF", "3", "64250.50")).notional == 1_927_515
    assert lg.reserve(coin("c2", "ETHF", "5", "3400")).notional == 850_000
    # 1 x 64,250.51 x 0.1 = 6,425.051 -> 6,425.06: rounded up, never under-counted.
    assert lg.reserve(coin("c3", "BTCF", "1", "64250.51")).notional == 642_506
    names = {r.limit_name for r in lg.utilization("strategy:BASIS")}
    assert {"messages.all.per_hour", "messages.new.250ms"} <= names
    assert lg.check().ok
