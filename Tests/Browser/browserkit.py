"""What the browser walks share: the deployment's environment, Chromium, checks, axe-core and
screenshots of every page, and the few gestures every walk makes (sign in, accept an e-mailed
invitation, submit a form and wait for the next page, play and seek)."""
import glob
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
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
FIRM_NAME = os.environ["FIRM_NAME"]

failures = []
pages_checked = set()
checks = 0


def check(condition, what):
    global checks
    checks += 1
    print(("  ok    " if condition else "  FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)


# axe-core, the version current when pinned (4.x), from PyPI: the axe.min.js that axe-playwright-python
# vendors (Tests/Browser/requirements-axe.txt, installed without Playwright). The file's SHA-256 is
# checked here as well, so the rules that judge the pages change only with this line.
AXE_VERSION = "4.12.1"
AXE_SHA256 = "84494fec757e4710dc751c8d7a636e457f4532f08f85c86dc9070133fbff53bc"
_axe_source = None


def axe_source():
    global _axe_source
    if _axe_source is None:
        path = importlib.metadata.distribution("axe-playwright-python").locate_file("axe_playwright_python/axe.min.js")
        with open(path, "rb") as handle:
            source = handle.read()
        if hashlib.sha256(source).hexdigest() != AXE_SHA256 or f"axe v{AXE_VERSION}".encode() not in source[:200]:
            sys.exit(f"error: {path} is not axe-core {AXE_VERSION} (SHA-256 {hashlib.sha256(source).hexdigest()}); run make browser")
        _axe_source = source.decode("utf-8")
    return _axe_source


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
        # A page being replaced answers with odd errors for a moment: they mean "not yet".
        return WebDriverWait(driver, timeout, ignored_exceptions=[WebDriverException]).until(condition)
    except TimeoutException:
        check(False, what + " (timed out)")
        return None


_axe_proved = False


def page(driver, name):
    """axe-core on the page as it stands, and its screenshots at desktop and phone width."""
    global _axe_proved
    os.makedirs(SHOTS, exist_ok=True)
    driver.execute_script(axe_source())
    if not _axe_proved:
        # Once a walk: axe-core, as injected, does find a fault (an image without a text alternative,
        # added for the moment and removed), so a pass below is not an axe that checks nothing.
        found = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const probe = document.createElement('div');
            probe.innerHTML = '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20">';
            document.body.appendChild(probe);
            axe.run(probe, {runOnly: ['image-alt']}).then(r => { probe.remove(); done(r.violations.map(v => v.id)); },
                                                         e => { probe.remove(); done(['error: ' + e]); });""")
        check(found == ["image-alt"], f"axe-core {AXE_VERSION} finds an image without alt text put in the page ({found})")
        _axe_proved = True
    results = driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                          "axe.run(document, {resultTypes: ['violations']}).then(done, e => done({error: String(e)}));")
    check("violations" in results, f"{name}: axe-core {AXE_VERSION} ran ({results.get('error', 'ok')})")
    results.setdefault("violations", [])
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


def navigate(driver, action, what):
    """Does `action` (a click) and waits for the next page: the old document, marked first, gone."""
    driver.execute_script("window.__calltraceOldPage = true")
    action()
    wait(driver, lambda d: d.execute_script("return window.__calltraceOldPage === undefined && document.readyState === 'complete'"),
         f"the page after {what}")


def submit(driver, css):
    """Clicks what `css` finds and waits for the next page."""
    navigate(driver, lambda: driver.find_element(By.CSS_SELECTOR, css).click(), css)


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


def read_qr(driver, element, name):
    """What a phone's camera would read: the element photographed as shown (SHOTS/NAME.png) and
    decoded by zbar (zbarimg, Debian's zbar-tools). The text of the one QR code found, or None."""
    os.makedirs(SHOTS, exist_ok=True)
    path = f"{SHOTS}/{name}.png"
    element.screenshot(path)
    decoded = subprocess.run(["zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", path], capture_output=True, text=True)
    found = decoded.stdout.rstrip("\n").split("\n") if decoded.returncode == 0 else []
    check(len(found) == 1, f"{name}: zbarimg reads one QR code in the image (exit {decoded.returncode}, {len(found)} found)")
    return found[0] if len(found) == 1 else None


def otpauth(uri):
    """The parts of an otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=... URI (Key Uri Format), decoded."""
    parsed = urllib.parse.urlsplit(uri)
    label_issuer, _, account = parsed.path.lstrip("/").partition(":")
    query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    return {"scheme": parsed.scheme, "type": parsed.netloc, "label_issuer": urllib.parse.unquote(label_issuer),
            "account": urllib.parse.unquote(account), **query}


def enrol_two_factor(driver, email, name, photograph=False):
    """Turns on two-factor from the Account page as a person with a phone does: the QR code is read
    from its picture, its otpauth URI checked (the firm and the person named, SHA-1, 6 digits, 30 s,
    the secret the one printed for those who cannot scan), and the app's code entered. The pyotp.TOTP."""
    import pyotp
    navigate(driver, lambda: driver.find_element(By.LINK_TEXT, "Account").click(), "Account")
    if photograph:
        page(driver, "account")
    fill(driver, "password", PASSWORD)
    submit(driver, "form[action='/account/two-factor'] button")
    qr = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".qr svg"), f"{name}: the QR code is shown")
    if not qr:
        return None
    if photograph:
        page(driver, name)
        qr = driver.find_elements(By.CSS_SELECTOR, ".qr svg")
    uri = read_qr(driver, qr[0], f"{name}-qr")
    if uri is None:
        return None
    # On a phone's screen the picture is scaled down to fit (320 px wide): still read, and the same.
    driver.set_window_size(320, 900)
    check(read_qr(driver, driver.find_element(By.CSS_SELECTOR, ".qr svg"), f"{name}-qr-phone") == uri,
          f"{name}: the QR code scaled to a 320 px screen reads the same")
    driver.set_window_size(1280, 900)
    parts = otpauth(uri)
    printed = re.sub(r"\s", "", driver.find_element(By.ID, "secret").text).upper()
    issuer = f"CallTrace ({FIRM_NAME})"
    check(parts["scheme"] == "otpauth" and parts["type"] == "totp", f"{name}: the QR code holds an otpauth://totp/ URI")
    check(parts.get("issuer") == issuer and parts["label_issuer"] == issuer,
          f"{name}: its issuer names the firm, in the label and the issuer parameter ({parts.get('issuer')!r}, {parts['label_issuer']!r})")
    check(parts["account"] == email, f"{name}: its label names the person ({parts['account']!r})")
    check((parts.get("algorithm"), parts.get("digits"), parts.get("period")) == ("SHA1", "6", "30"),
          f"{name}: SHA-1, 6 digits, 30 seconds ({parts.get('algorithm')}, {parts.get('digits')}, {parts.get('period')})")
    check(len(parts.get("secret", "")) >= 26 and parts.get("secret") == printed,
          f"{name}: the secret in the QR code is the key printed beside it ({len(printed)} characters)")
    # Not pyotp.parse_uri: it percent-decodes the whole URI before splitting it, so the "&" of
    # "Smith & Co" cuts its issuer short. The parts decoded one by one, as authenticator apps do.
    totp = pyotp.TOTP(parts.get("secret", ""), digits=int(parts.get("digits", 6)), digest=hashlib.sha1,
                      interval=int(parts.get("period", 30)), name=parts["account"], issuer=parts.get("issuer"))
    fill(driver, "code", totp.now())
    submit(driver, "form[action='/account/two-factor/confirm'] button")
    wait(driver, lambda d: "Two-factor authentication is on" in text(d), f"{name}: two-factor is on")
    return totp


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


def fetch_range(driver, first, last):
    """The player's source fetched by the page itself for bytes first..last: (status, length, Content-Range)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const audio = document.querySelector('audio');
        fetch(audio.currentSrc || audio.src, {headers: {Range: `bytes=${arguments[0]}-${arguments[1]}`}})
            .then(r => r.arrayBuffer().then(b => done([r.status, b.byteLength, r.headers.get('Content-Range')])))
            .catch(e => done(['error', String(e), '']));""", first, last)


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
    status, length, content_range = fetch_range(driver, 1000, 1999)
    check(status == 206 and length == 1000 and str(content_range).startswith("bytes 1000-1999/"),
          f"{what}: a range from the middle is answered 206 with exactly its bytes ({status}, {length}, {content_range})")


def finish(name):
    """Prints the walk's figures; exits 1 when a check failed."""
    print(f"{name}: {checks} checks on {len(pages_checked)} pages, {len(failures)} failed; screenshots in {SHOTS}")
    if failures:
        for failure in failures:
            print("  failed: " + failure)
        sys.exit(1)
