"""Drives the Cordon web console in headless Chromium (the distribution's
package, never a browser Playwright downloads): logs in with a token,
approves one held request once and another for ten minutes, revokes
that grant, kills an agent, and saves a screenshot of each main view. No page may show the
vault secret. Exits non-zero on any failure.

argv: URL TOKEN SHOTS_DIR KILL_AGENT SECRET
"""
import os
import sys

from playwright.sync_api import expect, sync_playwright

url, token, shots, kill_agent, secret = sys.argv[1:6]
seen = []
chromium = os.environ.get("CORDON_CHROMIUM", "/usr/bin/chromium")


def shot(page, name):
    page.wait_for_timeout(150)
    seen.append((name, page.content()))
    page.screenshot(path=os.path.join(shots, name + ".png"))


with sync_playwright() as p:
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append("failed: " + r.url) if "/api/audit/stream" not in r.url else None)

    page.goto(url + "/")
    page.fill("#token", token)
    page.click("#login-form button")
    page.wait_for_selector("#audit-rows tr", timeout=15000)
    expect(page.locator("#audit-state")).to_have_text("live")
    # Before login the page asked for a session and got 401, as it should.
    problems.clear()
    shot(page, "audit")

    page.click("nav a[data-view=approvals]")
    cards = page.locator("#approval-list .card")
    expect(cards).to_have_count(2, timeout=15000)
    shot(page, "approvals")
    once = cards.filter(has_text="fetcher wants")
    once.locator("button[data-answer=once]").click()
    page.click("#confirm-ok")
    expect(cards).to_have_count(1, timeout=15000)
    timed = cards.filter(has_text="fetcher2 wants")
    timed.locator("input.minutes").fill("10")
    timed.locator("button[data-answer=for]").click()
    page.click("#confirm-ok")
    expect(cards).to_have_count(0, timeout=15000)
    print("approved", flush=True)

    page.click("nav a[data-view=agents]")
    row = page.locator('tr[data-target^="%s/"]' % kill_agent)
    row.wait_for(timeout=15000)
    # Cancel first: nothing may happen without confirmation.
    row.locator("button[data-op=kill]").click()
    page.click("#confirm-cancel")
    page.wait_for_timeout(500)
    expect(row.locator("td.state")).to_have_text("running")
    row.locator("button[data-op=kill]").click()
    page.click("#confirm-ok")
    expect(row.locator("td.state")).to_have_text("killed", timeout=15000)
    print("killed", flush=True)
    shot(page, "agents")

    page.click("nav a[data-view=grants]")
    grant = page.locator("#grant-rows tr", has_text="fetcher2")
    expect(grant).to_have_count(1, timeout=15000)
    shot(page, "grants")
    grant.locator("button[data-op=revoke]").click()
    page.click("#confirm-ok")
    expect(grant).to_have_count(0, timeout=15000)
    print("revoked", flush=True)
    page.click("nav a[data-view=policy]")
    page.wait_for_selector("#policy-version:not(:empty)")
    # The explicit reload, and perhaps the watcher's for the same change.
    expect(page.locator("#policy-history tr").first).to_be_visible(timeout=15000)
    page.fill("#policy-at input[name=at]", "2000-01-01T00:00:00Z")
    page.click("#policy-at button")
    expect(page.locator("#policy-at-answer")).to_have_text("nothing recorded before then")
    page.fill("#policy-at input[name=at]", "2100-01-01T00:00:00Z")
    page.click("#policy-at button")
    version = page.locator("#policy-version").inner_text()
    expect(page.locator("#policy-at-answer")).to_have_text("version " + version)
    shot(page, "policy")
    page.click("nav a[data-view=suggest]")
    page.fill("#suggest-form input[name=agent]", "fetcher")
    page.click("#suggest-form button")
    expect(page.locator("#suggest-out")).to_contain_text("fetcher", timeout=15000)
    shot(page, "learn")
    page.click("nav a[data-view=vault]")
    expect(page.locator("#binding-rows tr", has_text="deployer-github")).to_have_count(1, timeout=15000)
    # A per-action binding is listed with its condition (its entry is not in the vault).
    conditional = page.locator("#binding-rows tr", has_text="deployer-stripe")
    expect(conditional).to_have_count(1)
    expect(conditional).to_contain_text('action.startsWith("stripe.refund.")')
    expect(conditional).to_contain_text("(no such entry)")
    expect(page.locator("#vault-rows tr", has_text="deployer-github")).to_have_count(1)
    shot(page, "vault")

    browser.close()
    for name, html in seen:
        if secret in html:
            problems.append("the vault secret is in the %s view" % name)
    if problems:
        print("browser errors: %s" % problems, file=sys.stderr)
        sys.exit(1)
