"""First paint of the Cordon console's live audit view, in headless
Chromium (the distribution's). Logs in once, then reloads the view N
times; each figure is the time from navigation start to the frame after
the audit rows were drawn (the page's `cordon-audit-painted` mark).

argv: URL TOKEN N. Prints one JSON line.
"""
import json
import os
import sys

from playwright.sync_api import sync_playwright

url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Read with evaluate (CDP), not wait_for_function: the console's CSP forbids
# the eval that a string predicate needs, as it should.
MARK = "performance.getEntriesByName('cordon-audit-painted').map(e => e.startTime)"


def painted(page):
    for _ in range(1500):
        marks = page.evaluate(MARK)
        if marks:
            return marks[0]
        page.wait_for_timeout(20)
    raise SystemExit("the audit view never painted")


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=os.environ["CORDON_CHROMIUM"], args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("#login-form button")
    painted(page)
    times = []
    for _ in range(n):
        page.reload()
        times.append(painted(page))
    rows = page.locator("#audit-rows tr").count()
    browser.close()
    print(json.dumps({"paint_ms": times, "rows": rows}))
