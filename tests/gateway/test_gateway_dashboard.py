"""/dashboard through the test client: access, cells with amounts, kills, rejects, history, no
outside assets."""

from __future__ import annotations

import re

import pytest


def cells(html: str) -> dict[tuple[str, str], float]:
    found = re.findall(r'data-scope="([^"]+)" data-limit="([^"]+)" data-percent="([^"]+)"', html)
    return {(scope, limit): float(p) for scope, limit, p in found}


def test_ops_page_has_a_heatmap_cell_per_node_and_limit(client, tokens, auth, new_order):
    client.post(
        "/v1/orders", json=new_order("h1", qty="5000", price="200"), headers=auth("order-entry")
    )
    r = client.get(f"/dashboard?token={tokens['ops']}", follow_redirects=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    grid = cells(r.text)
    # 1,000,000.00 of the trader's 2,000,000.00 gross; of EQ-CASH's 10,000,000.00.
    assert grid[("trader:T-ALICE", "max_gross_notional")] == 50.0
    assert grid[("desk:EQ-CASH", "max_gross_notional")] == 10.0
    assert grid[("desk:EQ-DERIV", "max_gross_notional")] == 0.0
    assert ("strategy:MM-1", "messages.all.per_second") in grid
    assert "hsl(60, 70%, 46%)" in r.text  # the 50 % cell is amber


def test_a_query_token_is_moved_to_an_httponly_cookie_by_a_redirect(client, tokens):
    r = client.get(f"/dashboard?token={tokens['desk-head']}")
    assert r.status_code == 303 and r.headers["Location"] == "/dashboard"
    cookie = r.headers["Set-Cookie"]
    assert "ledger_token=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    live = client.get("/dashboard/live")
    assert live.status_code == 200 and 'id="utilization"' in live.text
    assert "<html" not in live.text


def test_the_bearer_header_also_works(client, auth):
    assert client.get("/dashboard", headers=auth("ops")).status_code == 200


def test_desk_head_sees_only_its_desks(client, tokens, auth, new_order):
    client.post("/v1/orders", json=new_order("r1", account="ACC-3"), headers=auth("order-entry"))
    r = client.get(f"/dashboard?token={tokens['desk-head']}", follow_redirects=True)
    scopes = {scope for scope, _ in cells(r.text)}
    assert "desk:EQ-CASH" in scopes
    assert "desk:EQ-DERIV" not in scopes and "firm:ACME" not in scopes


def test_active_kills_and_rejects_by_reason_are_shown(client, tokens, auth, new_order):
    client.post(
        "/v1/orders", json=new_order("q1", qty="200000", price="1"), headers=auth("order-entry")
    )
    client.post(
        "/v1/orders", json=new_order("q2", qty="200000", price="1"), headers=auth("order-entry")
    )
    client.post("/v1/kill", json={"scope": "strategy:MM-1", "reason": "drill"}, headers=auth("ops"))
    client.post("/v1/orders", json=new_order("q3"), headers=auth("order-entry"))
    html = client.get(f"/dashboard?token={tokens['ops']}", follow_redirects=True).text
    assert 'class="kill" data-scope="strategy:MM-1"' in html and "drill" in html
    counts = dict(re.findall(r'data-reason="([A-Z_]+)"><td>[A-Z_]+</td><td>(\d+)</td>', html))
    assert counts == {"MAX_ORDER_QTY": "2", "KILL_SWITCH": "1"}


def test_the_page_refreshes_itself_and_loads_nothing_from_outside(client, tokens):
    html = client.get(f"/dashboard?token={tokens['ops']}", follow_redirects=True).text
    assert "/dashboard/live" in html and "setTimeout(refresh" in html
    assert 'http-equiv="refresh"' in html  # for browsers without scripts
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html


@pytest.mark.parametrize("role", ["order-entry", "risk-admin"])
def test_other_roles_are_403(client, tokens, role):
    r = client.get(f"/dashboard?token={tokens[role]}", headers={"Accept": "text/html"})
    assert r.status_code == 403 and "FORBIDDEN" in r.text
    assert "Set-Cookie" not in r.headers


def test_no_token_is_401_with_a_form_for_people_and_json_for_scripts(client):
    page = client.get("/dashboard", headers={"Accept": "text/html"})
    assert page.status_code == 401 and page.mimetype == "text/html"
    assert 'name="token"' in page.text
    script = client.get("/dashboard/live", headers={"Accept": "application/json"})
    assert script.status_code == 401 and script.json["reason"] == "UNAUTHORIZED"


def test_a_revoked_cookie_token_is_401(client, tokens, redis_client):
    from ledger.store.tokens import TokenStore

    client.get(f"/dashboard?token={tokens['ops']}")
    TokenStore(redis_client).revoke("ops-alice")
    assert client.get("/dashboard/live").status_code == 401


def _text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def _cell_text(html: str, scope: str, limit: str) -> str:
    m = re.search(
        rf'data-scope="{re.escape(scope)}" data-limit="{re.escape(limit)}" '
        r'data-percent="[^"]+">(.*?)</tr>',
        html,
        re.S,
    )
    assert m is not None, (scope, limit)
    return _text(m.group(1))


def test_cells_show_amounts_with_the_currency_and_readable_limit_names(
    client, tokens, auth, new_order
):
    client.post(
        "/v1/orders", json=new_order("h1", qty="5000", price="200"), headers=auth("order-entry")
    )
    html = client.get("/dashboard", headers=auth("ops")).text
    assert _cell_text(html, "trader:T-ALICE", "max_gross_notional") == (
        "Gross notional 1,000,000.00 / 2,000,000.00 USD 50.0%"
    )
    assert _cell_text(html, "desk:EQ-CASH", "max_open_orders") == "Open orders 1 / 500 0.2%"
    assert _cell_text(html, "strategy:MM-1", "messages.all.per_10s") == (
        "Messages per 10 s (all) 1 / 300 0.3%"
    )
    assert _cell_text(html, "strategy:STAT-ARB", "messages.cancel.per_second") == (
        "Messages per 1 s (cancels) 0 / 10 0.0%"
    )
    assert ">messages.all.per_10s<" not in html and ">max_gross_notional<" not in html


def test_a_stressed_limit_shows_the_policy_value_beside_the_one_in_force(client, ledger, auth):
    ledger.stress.on("firm:ACME", "0.5", by="cro", reason="vol spike")
    html = client.get("/dashboard", headers=auth("ops")).text
    assert _cell_text(html, "firm:ACME", "max_gross_notional") == (
        "Gross notional 0.00 / 25,000,000.00 USD "
        "in force: stress 0.5; policy 50,000,000.00 USD 0.0%"
    )
    # A count limit is not scaled by stress: nothing more is said beside it.
    assert _cell_text(html, "desk:EQ-CASH", "max_open_orders") == "Open orders 0 / 500 0.0%"


def test_rejects_are_listed_with_account_trader_symbol_and_reason_in_utc(client, auth, new_order):
    client.post(
        "/v1/orders",
        json=new_order("big", account="ACC-2", trader="T-BOB", qty="30000", symbol="MSFT"),
        headers=auth("order-entry"),
    )
    html = client.get("/dashboard", headers=auth("ops")).text
    row = re.search(r'<tr class="reject" data-order="big">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[1:5] == ["ACC-2", "T-BOB", "MSFT", "MAX_ORDER_QTY"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", cells[0])
    assert "time (UTC)" in html and "all times UTC" in html
    # The page's own clock is UTC too, never the browser's local 12-hour time.
    assert "toLocaleTimeString" not in html and "toISOString" in html


def test_the_last_hour_is_drawn_per_node_from_one_sample_per_interval(
    client, ledger, redis_client, auth, new_order
):
    client.post(
        "/v1/orders", json=new_order("h1", qty="5000", price="200"), headers=auth("order-entry")
    )
    client.post("/v1/orders", json=new_order("q1", qty="200000"), headers=auth("order-entry"))
    html = client.get("/dashboard", headers=auth("ops")).text
    assert redis_client.xlen("ledger:dashboard:history") == 1
    assert 0 < redis_client.pttl("ledger:dashboard:history") <= 3_600_000
    client.get("/dashboard/live", headers=auth("ops"))
    assert redis_client.xlen("ledger:dashboard:history") == 1  # within the interval: no new one
    card = re.search(
        r'<article class="node" data-scope="trader:T-ALICE">(.*?)</article>', html, re.S
    )
    assert card is not None
    body = card.group(1)
    # One point, at the right edge (now), half way up (50 % peak).
    assert re.search(r'<polyline points="1[12]\d(\.\d)?,12\.0"/>', body), body
    assert "utilization 1 h: 50.0% now" in body
    # The MAX_ORDER_QTY reject is on T-ALICE's path: one bar, one reject.
    assert body.count("<rect ") == 1 and "rejects 1 h: 1<" in body
    bob = re.search(r'data-scope="trader:T-BOB">(.*?)</article>', html, re.S)
    assert bob is not None and "<rect " not in bob.group(1) and "rejects 1 h: 0<" in bob.group(1)


def test_a_desk_head_gets_only_its_nodes_history(client, tokens, auth, new_order):
    client.post(
        "/v1/orders",
        json=new_order("d1", account="ACC-3", trader="T-BOB", strategy="STAT-ARB", qty="9000"),
        headers=auth("order-entry"),
    )
    html = client.get("/dashboard", headers=auth("desk-head")).text
    scopes = set(re.findall(r'<article class="node" data-scope="([^"]+)">', html))
    assert scopes == {"desk:EQ-CASH", "strategy:MM-1", "trader:T-ALICE"}
    assert not {"desk:EQ-DERIV", "account:ACC-3", "firm:ACME", "trader:T-BOB"} & scopes
    assert "ACC-3" not in html


def test_a_metrics_scrape_samples_the_history_too(client, redis_client, auth):
    # Prometheus scrapes every few seconds: the last hour has no gaps when nobody watches.
    assert client.get("/metrics", headers=auth("monitoring")).status_code == 200
    assert redis_client.xlen("ledger:dashboard:history") == 1
    html = client.get("/dashboard", headers=auth("ops")).text
    assert redis_client.xlen("ledger:dashboard:history") == 1
    assert html.count("utilization 1 h: 0.0% now") >= 5
