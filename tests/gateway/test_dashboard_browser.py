"""The dashboard in headless Chromium: cells show amounts, the page fits two window sizes (with
screenshots under the test's tmp dir), and a kill appears live.

Needs Debian's ``chromium`` and the ``playwright`` Python package (its own
browser download is never used); skipped where either is missing.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from gateway import create_app

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH", allow_module_level=True)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def base_url(ledger, redis_url) -> Iterator[str]:
    app = create_app(
        {"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000, "DASHBOARD_REFRESH_MS": 300}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def test_heatmap_renders_and_a_live_kill_appears_without_reload(
    browser, base_url, client, auth, tokens, new_order
):
    client.post(
        "/v1/orders", json=new_order("b1", qty="5000", price="200"), headers=auth("order-entry")
    )
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{base_url}/dashboard?token={tokens['ops']}")
    assert page.url == f"{base_url}/dashboard"  # the token moved to a cookie
    # Read in one script run: the page swaps its live part every 300 ms.
    text, colour = page.evaluate(
        """sel => {
            const e = document.querySelector(sel);
            return [e.textContent.trim(), getComputedStyle(e).backgroundColor];
        }""",
        'tr.cell[data-scope="trader:T-ALICE"][data-limit="max_gross_notional"] td.pct',
    )
    assert (text, colour) == ("50.0%", "rgb(199, 199, 35)")
    assert page.locator("tr.cell").count() >= 10
    assert page.locator("#no-kills").is_visible()

    r = client.post(
        "/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "browser drill"}, headers=auth("ops")
    )
    assert r.status_code == 200
    row = 'tr.kill[data-scope="desk:EQ-CASH"]'
    page.wait_for_selector(row, timeout=15000)  # brought by the page's own refresh
    shown = page.evaluate("sel => document.querySelector(sel).textContent", row)
    assert "browser drill" in shown and "ops-alice" in shown
    assert page.locator("#status").inner_text().startswith("live")

    assert errors == []
    assert all(url.startswith(base_url) for url in requested), requested
    context.close()


def test_desk_head_keeps_its_cookie_and_sees_its_desk_only(browser, base_url, tokens):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base_url}/dashboard?token={tokens['desk-head']}")
    page.goto(f"{base_url}/dashboard")  # the cookie now carries the token
    assert page.locator('article.node[data-scope="desk:EQ-CASH"]').count() == 1
    assert page.locator('article.node[data-scope="desk:EQ-DERIV"]').count() == 0
    assert "dh-cash" in page.locator("header").inner_text()
    context.close()


SIZES = {"desktop": (1366, 768), "phone": (390, 844)}


@pytest.mark.parametrize("size", list(SIZES))
def test_the_page_fits_the_window_and_cells_read_as_amounts(
    browser, base_url, client, auth, tokens, new_order, tmp_path, size
):
    client.post(
        "/v1/orders", json=new_order("b1", qty="5000", price="200"), headers=auth("order-entry")
    )
    client.post(
        "/v1/orders",
        json=new_order("b2", account="ACC-2", trader="T-BOB", qty="30000", symbol="MSFT"),
        headers=auth("order-entry"),
    )
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{base_url}/dashboard?token={tokens['ops']}")
    page.wait_for_selector('tr.reject[data-order="b2"]')
    page.screenshot(path=str(tmp_path / f"dashboard-{size}.png"), full_page=True)
    layout = page.evaluate(
        """() => {
            const root = document.documentElement;
            const cell = document.querySelector(
                'tr.cell[data-scope="trader:T-ALICE"][data-limit="max_gross_notional"]');
            const wide = [...document.querySelectorAll("section, article.node")]
                .filter(e => e.getBoundingClientRect().right > root.clientWidth + 1).length;
            return {
                scroll: root.scrollWidth, client: root.clientWidth, wide: wide,
                cell: cell.innerText.replace(/\\s+/g, " ").trim(),
                sparks: document.querySelectorAll("figure.spark svg").length,
                asof: document.querySelector(".asof").innerText,
            };
        }"""
    )
    assert layout["scroll"] <= layout["client"], layout  # no horizontal overflow of the page
    assert layout["wide"] == 0, layout
    assert layout["cell"] == "Gross notional 1,000,000.00 / 2,000,000.00 USD 50.0%"
    assert layout["sparks"] >= 2 * page.locator("article.node").count() > 0
    assert "all times UTC" in layout["asof"]
    assert (tmp_path / f"dashboard-{size}.png").stat().st_size > 10_000
    context.close()
