"""Drives the Cordon web console in headless Chromium (the distribution's
package, never a browser Playwright downloads): logs in with a token,
approves the held request once, kills an agent, and saves a screenshot of
each main view. Exits non-zero on any failure.

argv: URL TOKEN SHOTS_DIR KILL_AGENT
"""
import os
import sys

from playwright.sync_api import expect, sync_playwright

url, token, shots, kill_agent = sys.argv[1:5]
chromium = os.environ.get("CORDON_CHROMIUM", "/usr/bin/chromium")


def shot(page, name):
    page.wait_for_timeout(150)
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
    shot(page, "audit")

    page.click("nav a[data-view=approvals]")
    card = page.locator("#approval-list .card").first
    card.wait_for(timeout=15000)
    shot(page, "approvals")
    card.locator("button[data-answer=once]").click()
    page.click("#confirm-ok")
    page.wait_for_selector("#approval-list .card", state="detached", timeout=15000)
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
    shot(page, "grants")
    page.click("nav a[data-view=policy]")
    page.wait_for_selector("#policy-version:not(:empty)")
    shot(page, "policy")
    page.click("nav a[data-view=suggest]")
    page.fill("#suggest-form input[name=agent]", "fetcher")
    page.click("#suggest-form button")
    expect(page.locator("#suggest-out")).to_contain_text("fetcher", timeout=15000)
    shot(page, "learn")
    page.click("nav a[data-view=vault]")
    page.wait_for_timeout(500)
    shot(page, "vault")

    browser.close()
    if problems:
        print("browser errors: %s" % problems, file=sys.stderr)
        sys.exit(1)
