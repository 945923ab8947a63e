"""/dashboard through the test client: access, heatmap, kills, rejects, no outside assets."""

from __future__ import annotations

import re

import pytest


def cells(html: str) -> dict[tuple[str, str], float]:
    found = re.findall(r'data-scope="([^"]+)"\s+data-limit="([^"]+)" data-percent="([^"]+)"', html)
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
    from ledger.tokens import TokenStore

    client.get(f"/dashboard?token={tokens['ops']}")
    TokenStore(redis_client).revoke("ops-alice")
    assert client.get("/dashboard/live").status_code == 401
