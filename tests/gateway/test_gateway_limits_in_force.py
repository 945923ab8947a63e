"""``/v1/utilization`` and the dashboard show the limit in force with the policy's beside it."""

from __future__ import annotations

import re

import pytest
import redis

from ledger import Ledger, Order, parse_policy
from ledger.store.tokens import Role, TokenStore
from tests.test_effective import DOC


@pytest.fixture
def raised(ledger: Ledger) -> Ledger:
    """The issue's scenario: D1 raised from 1,000,000.00 to 1,500,000.00; 1,100,000.00 used."""
    ledger.load_policy(parse_policy(DOC, source="effective"), by="test")
    ov = ledger.overrides.request(
        "desk:D1", "max_gross_notional", "1500000", duration="30m", ticket="RISK-1", by="alice"
    )
    ledger.overrides.approve(ov.id, by="bob")
    ledger.overrides.approve(ov.id, by="carol")
    d = ledger.reserve(Order("o1", "T1", "S1", "A1", "XYZ", "buy", "110", "10000"))
    assert d.accepted, d
    return ledger


@pytest.fixture
def headers(redis_client: redis.Redis) -> dict[str, dict[str, str]]:
    store = TokenStore(redis_client)
    return {
        "ops": {"Authorization": f"Bearer {store.create(Role.OPS, 'ops-1')}"},
        "d1": {"Authorization": f"Bearer {store.create(Role.DESK_HEAD, 'head-d1', ['D1'])}"},
    }


def test_utilization_answers_the_limit_in_force_and_the_policy_value(client, raised, headers):
    r = client.get("/v1/utilization?scope=desk:D1", headers=headers["d1"])
    assert r.status_code == 200
    (row,) = [x for x in r.json["rows"] if x["limit_name"] == "max_gross_notional"]
    assert row["used"] == 110_000_000 and row["limit"] == 150_000_000
    assert row["policy_limit"] == 100_000_000 and row["override"] == "OV-1"
    assert row["percent"] == 73.33


def test_the_dashboard_cell_is_against_the_override_and_says_so(client, raised, headers):
    html = client.get("/dashboard", headers=headers["ops"]).text
    cell = re.search(
        r'data-scope="desk:D1" data-limit="max_gross_notional" data-percent="([^"]+)">(.*?)</tr>',
        html,
        re.S,
    )
    assert cell is not None
    assert float(cell.group(1)) == 73.3
    text = " ".join(re.sub(r"<[^>]+>", " ", cell.group(2)).split())
    assert text == (
        "Gross notional 1,100,000.00 / 1,500,000.00 USD "
        "in force: override OV-1; policy 1,000,000.00 USD 73.3%"
    )
