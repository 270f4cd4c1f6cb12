"""The web app walked in a real headless Chromium, as a firm's staff use it.

Run by scripts/browser-test.sh (part of `make test`) against the four services and calltrace-web
started as processes, with one firm set up by the CLI (a tracking number, a recorded call with
its transcript) and a second firm. Every page is checked with axe-core (no serious or critical
violations) and photographed at desktop and phone width under .build/screenshots.
"""
import glob
import json
import os
import re
import sys
import time

import pyotp
from axe_selenium_python import Axe
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["WEB_BASE"]
MAIL = os.environ["WEB_MAIL"]
SHOTS = os.environ.get("WEB_SHOTS", ".build/screenshots")
FIRM = os.environ["FIRM_ORG"]
FIRM_ADMIN = os.environ["FIRM_ADMIN_EMAIL"]
OTHER_FIRM = os.environ["OTHER_ORG"]
OTHER_ADMIN = os.environ["OTHER_ADMIN_EMAIL"]
CALL = os.environ["CALL_ID"]
PASSWORD = os.environ["PASSWORD"]
SAID = os.environ["CALL_SAID"]

failures = []
checks = 0
pages_checked = set()


def check(condition, what):
    global checks
    checks += 1
    print(("  ok    " if condition else "  FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)


def new_browser():
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--disable-extensions", "--no-first-run"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait(driver, condition, what, timeout=30):
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        check(False, what + " (timed out)")
        return None


def page(driver, name):
    """axe-core on the page as it stands, and its screenshots at desktop and phone width."""
    os.makedirs(SHOTS, exist_ok=True)
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    serious = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
    for violation in serious:
        print(f"        axe {violation['id']}: {violation['help']}: " + "; ".join(str(n.get('target')) + ' ' + n.get('html', '')[:120] for n in violation['nodes'][:3]))
    check(not serious, f"{name}: no serious or critical accessibility violations")
    for label, width in (("desktop", 1280), ("phone", 320)):
        driver.set_window_size(width, 900)
        driver.execute_script("window.scrollTo(0, 0)")
        height = driver.execute_script("return Math.max(document.body.scrollHeight, 900)")
        driver.set_window_size(width, min(height, 4000))
        driver.save_screenshot(f"{SHOTS}/{name}-{label}.png")
        if label == "phone":
            overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 1:
                wide = driver.execute_script("""
                    return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                        && !e.closest('.scroll')).slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right));""")
                print(f"        wider than the screen: {wide}")
            check(overflow <= 1, f"{name}: readable at 320 px (nothing wider than the screen; {overflow}px over)")
    driver.set_window_size(1280, 900)
    pages_checked.add(name)


def text(driver):
    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except StaleElementReferenceException:
        return ""


def submit(driver, css):
    """Clicks what `css` finds and waits for the next page (the old one gone)."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    wait(driver, expected_conditions.staleness_of(old), f"the page after {css}")


def mail_token(email, kind="invitation"):
    newest = None
    for path in sorted(glob.glob(os.path.join(MAIL, "*.json"))):
        with open(path) as handle:
            message = json.load(handle)
        if message.get("email") == email and message.get("kind") == kind:
            newest = message["token"]
    return newest


def fill(driver, field, value):
    element = driver.find_element(By.ID, field)
    element.clear()
    element.send_keys(value)


def sign_in(driver, firm, email, password=PASSWORD, code=""):
    driver.get(BASE + "/sign-in")
    fill(driver, "firm", firm)
    fill(driver, "email", email)
    fill(driver, "password", password)
    if code:
        fill(driver, "code", code)
    submit(driver, "form[action='/sign-in'] button[type=submit]")


def accept_invitation(driver, email):
    token = mail_token(email)
    check(token is not None, f"the invitation e-mail reached {email}")
    driver.get(f"{BASE}/accept-invitation?token={token}")
    fill(driver, "password", PASSWORD)
    fill(driver, "confirm", PASSWORD)
    submit(driver, "main button[type=submit]")
    wait(driver, lambda d: "/sign-in" in d.current_url, "the invitation leads to sign-in")


def network(driver, fragment):
    """(Range header, status) of every request the browser made whose URL holds `fragment`."""
    requests, statuses = {}, {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent" and fragment in params.get("request", {}).get("url", ""):
            headers = {k.lower(): v for k, v in params["request"].get("headers", {}).items()}
            requests[params["requestId"]] = headers.get("range")
        elif message.get("method") == "Network.responseReceived" and fragment in params.get("response", {}).get("url", ""):
            statuses[params["requestId"]] = params["response"]["status"]
    return [(requests.get(key), statuses.get(key)) for key in requests]


def play_and_seek(driver, what):
    ready = wait(driver, lambda d: d.execute_script(
        "const a = document.querySelector('audio'); a.play().catch(() => {}); return a.readyState >= 1 && a.duration > 0;"),
        f"{what}: the player loads the recording")
    if not ready:
        return
    duration = driver.execute_script("return document.querySelector('audio').duration")
    driver.execute_script("const a = document.querySelector('audio'); a.currentTime = arguments[0];", duration * 0.75)
    seeked = wait(driver, lambda d: d.execute_script(
        "const a = document.querySelector('audio'); return !a.seeking && a.currentTime >= arguments[0] && a.readyState >= 2;", duration * 0.7),
        f"{what}: seeking to three quarters plays from there")
    check(bool(seeked), f"{what}: seeking works")


def main():
    admin = new_browser()
    member = new_browser()
    stranger = new_browser()
    analyst = new_browser()
    other = new_browser()
    try:
        print("A firm's admin signs in and invites a member and an analyst")
        admin.get(BASE + "/sign-in")
        page(admin, "sign-in")
        sign_in(admin, FIRM, FIRM_ADMIN)
        wait(admin, lambda d: d.current_url.endswith("/calls"), "the admin lands on the calls")
        page(admin, "calls")
        old = admin.find_element(By.TAG_NAME, "html")
        admin.find_element(By.LINK_TEXT, "Settings").click()
        wait(admin, expected_conditions.staleness_of(old), "Settings opens")
        wait(admin, lambda d: "/settings/users" in d.current_url, "Settings opens the users")
        for email, name, role in (("mia@smith.example", "Mia Member", "member"), ("alan@smith.example", "Alan Analyst", "analyst")):
            fill(admin, "invite-name", name)
            fill(admin, "invite-email", email)
            Select(admin.find_element(By.ID, "invite-role")).select_by_value(role)
            submit(admin, "form[action='/settings/users/invite'] button")
            wait(admin, lambda d: "Invitation sent" in text(d), f"{name} is invited")
        check("Mia Member" in text(admin) and "Invited" in text(admin), "the users list shows the invitation")
        page(admin, "users")

        print("The member accepts the e-mailed link and sets up two-factor from the QR code")
        accept_invitation(member, "mia@smith.example")
        check(member.find_element(By.ID, "firm").get_attribute("value") == FIRM, "the sign-in form knows the firm from the link")
        page(member, "sign-in-ready")
        sign_in(member, FIRM, "mia@smith.example")
        wait(member, lambda d: d.current_url.endswith("/calls"), "the member is signed in")
        old = member.find_element(By.TAG_NAME, "html")
        member.find_element(By.LINK_TEXT, "Account").click()
        wait(member, expected_conditions.staleness_of(old), "Account opens")
        page(member, "account")
        fill(member, "password", PASSWORD)
        submit(member, "form[action='/account/two-factor'] button")
        wait(member, lambda d: d.find_elements(By.CSS_SELECTOR, ".qr svg"), "the QR code is shown")
        page(member, "two-factor")
        secret = member.find_element(By.ID, "secret").text.strip()
        totp = pyotp.TOTP(secret)
        fill(member, "code", totp.now())
        submit(member, "form[action='/account/two-factor/confirm'] button")
        wait(member, lambda d: "Two-factor authentication is on" in text(d), "two-factor is on")
        submit(member, "form[action='/sign-out'] button")
        wait(member, lambda d: "You have signed out" in text(d), "signing out")
        sign_in(member, FIRM, "mia@smith.example")
        wait(member, lambda d: "not right" in text(d), "without the code, the sign-in is refused")
        # The code of the next 30-second step: the one just used to confirm is refused as used.
        sign_in(member, FIRM, "mia@smith.example", code=totp.at(time.time() + 30))
        wait(member, lambda d: d.current_url.endswith("/calls"), "with the app's code, the member is in")

        print("The member finds the call by its source, plays it and seeks, reads the transcript, marks the outcome")
        fill(member, "source", "Google Ads - personal injury")
        submit(member, "form.filters button")
        link = wait(member, lambda d: d.find_elements(By.CSS_SELECTOR, f"a[href='/calls/{CALL}']"), "the call is listed under its source")
        if link:
            old = member.find_element(By.TAG_NAME, "html")
            link[0].click()
            wait(member, expected_conditions.staleness_of(old), "the call opens")
        wait(member, lambda d: d.find_elements(By.ID, "player"), "the call page has the player")
        page(member, "call")
        play_and_seek(member, "member's player")
        ranged = network(member, "/recordings/")
        check(any(r and s == 206 for r, s in ranged), f"the player's seek is a range request answered 206 ({ranged[:4]})")
        check(SAID in text(member), "the transcript shows what was said")
        check("[card number removed]" in text(member) or "4111 1111 1111 1111" not in text(member), "the card number is not in the transcript")
        member.find_element(By.CSS_SELECTOR, "input[name=enquiry][value=new]").click()
        member.find_element(By.CSS_SELECTOR, "input[name=matter][value=yes]").click()
        fill(member, "reference", "2026/0042")
        Select(member.find_element(By.ID, "area")).select_by_visible_text("Personal injury")
        submit(member, "form[action$='/outcome'] button")
        wait(member, lambda d: "The outcome is saved" in text(d), "the outcome is saved")
        check("Opened, reference 2026/0042" in text(member), "the call shows the matter")

        print("The member shares the recording; the link plays signed out, until revoked")
        fill(member, "days", "2")
        fill(member, "note", "counsel's review")
        submit(member, "form[action$='/share'] button")
        field = wait(member, lambda d: d.find_elements(By.ID, "new-link"), "the new link is shown once")
        shared = field[0].get_attribute("value") if field else ""
        member.find_element(By.CSS_SELECTOR, "button[data-copy]").click()
        wait(member, lambda d: "Copied." in text(d), "the link can be copied")
        page(member, "call-shared")
        stranger.get(shared)
        wait(stranger, lambda d: d.find_elements(By.TAG_NAME, "audio"), "the share link opens signed out")
        page(stranger, "shared")
        play_and_seek(stranger, "share link's player")
        check(any(s == 206 for _, s in network(stranger, "/s/")), "the shared recording streams in ranges")
        submit(member, "form[action$='/revoke'] button")
        wait(member, lambda d: "The link is revoked" in text(d), "the link is revoked")
        stranger.get(shared)
        check("This recording is not available" in text(stranger), "the revoked link says not available")
        page(stranger, "shared-gone")

        print("The analyst sees calls, never audio or words; another firm's call id is not found")
        accept_invitation(analyst, "alan@smith.example")
        sign_in(analyst, FIRM, "alan@smith.example")
        wait(analyst, lambda d: d.current_url.endswith("/calls"), "the analyst is signed in")
        analyst.get(f"{BASE}/calls/{CALL}")
        check(not analyst.find_elements(By.TAG_NAME, "audio") and "Transcript" not in text(analyst), "the analyst's call page has no audio or transcript")
        page(analyst, "call-analyst")
        recording = re.search(r"/recordings/([^/]+)/audio", member.page_source)
        if recording:
            analyst.get(f"{BASE}/recordings/{recording.group(1)}/audio")
            check("You do not have access" in text(analyst), "the analyst is refused the audio")
            page(analyst, "refused")
        sign_in(other, OTHER_FIRM, OTHER_ADMIN)
        wait(other, lambda d: d.current_url.endswith("/calls"), "the other firm's admin is signed in")
        other.get(f"{BASE}/calls/{CALL}")
        check("Not found" in text(other), "another firm's call id gives not found")
        page(other, "not-found")
    finally:
        for driver in (admin, member, stranger, analyst, other):
            driver.quit()
    print(f"browser: {checks} checks on {len(pages_checked)} pages, {len(failures)} failed; screenshots in {SHOTS}")
    if failures:
        for failure in failures:
            print("  failed: " + failure)
        sys.exit(1)


if __name__ == "__main__":
    main()
