"""The website tag (issue 32) in a real headless Chromium: a firm's page, served on an origin of its
website by a small HTTP server here, loads /dni.js from the web gateway (another origin). Before
consent the firm's number shows as the website source's number everywhere it is printed or linked,
content added later included, and nothing is stored or sent about the visitor; after the consent
call the pool number shows everywhere, the visitor id is stored, the reservation renews while the
page stays, and a call to that number joins the visit with its campaign. Google Consent Mode's
signal in the page's dataLayer does the same (a click id only with ad_storage granted), consent
withdrawn clears what was stored, and a page on an origin not the website's is left as it is.

Run by scripts/browser-test.sh after the other walks (it adds numbers, a website and a call to
the firm). Its pages are checked with axe-core and photographed under .build/screenshots.
"""
import http.server
import json
import os
import subprocess
import threading

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browserkit import *  # noqa: F403 (the walks' shared vocabulary)

PAGE_PORT = int(os.environ["DNI_PAGE_PORT"])
ORIGIN = f"http://127.0.0.1:{PAGE_PORT}"
CONSENT_MODE_ORIGIN = f"http://localhost:{PAGE_PORT}"
FOREIGN_ORIGIN = f"http://127.0.0.1:{PAGE_PORT + 1}"
SOURCE, POOL = "0118 496 0002", ["0118 496 0003", "0118 496 0004"]
FAMILY_POOL = "0118 496 0005"  # the second website's, given on the Websites page
GCLID = "Cj0KCQiA-browser_walk_1"
RENEW_SECONDS = 2


def cli(*args, stdin=None):
    """The calltrace CLI against transcript, as the deployment's own tooling, with the firm's admin token; its JSON."""
    command = [os.environ["CALLTRACE_CLI"], *args, "--org", FIRM, "--token", os.environ["FIRM_ADMIN_TOKEN"],
               "--pki", os.environ["WALK_PKI"], "--target", os.environ["TRANSCRIPT_TARGET"], "--json"]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, env={**os.environ, "CALLTRACE_AS": "gateway-web"})
    check(done.returncode == 0, f"calltrace {args[0]} {args[1]} ({done.stderr.strip()[:200] or 'ok'})")
    return json.loads(done.stdout) if done.returncode == 0 else {}


def firm_page(key, head=""):
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Smith &amp; Co Solicitors: contact us</title>{head}</head>
<body><main>
<h1>Contact Smith &amp; Co Solicitors</h1>
<p id="printed">Call us on 020 7946 0000, from abroad on +44 20 7946 0000 (or 02079460000).</p>
<p><a id="link" href="tel:+442079460000">Call the office</a></p>
<div id="later"></div>
</main>
<script src="{BASE}/dni.js" data-site-key="{key}" data-renew-seconds="{RENEW_SECONDS}" async></script>
</body></html>"""


def serve(pages, port):
    """The firm's pages on 127.0.0.1:`port` (path → HTML), in a thread."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def state(driver):
    return driver.execute_script("return window.calltrace ? window.calltrace.state() : null") or {}


def stored(driver):
    return driver.execute_script("return {cookie: document.cookie, local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage)}")


def shown(driver):
    return {"printed": driver.find_element(By.ID, "printed").text, "link": driver.find_element(By.ID, "link").get_attribute("href"),
            "later": driver.find_element(By.ID, "later").text}


def add_later(driver, text_):
    driver.execute_script("const p = document.createElement('p'); p.textContent = arguments[0]; document.getElementById('later').appendChild(p);", text_)


def sent(driver):
    """Every request the browser made since the last look: (url, body, headers as sent, Referer included)."""
    made, extra = {}, {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            request = params["request"]
            made[params["requestId"]] = (request["url"], request.get("postData", ""), json.dumps(request.get("headers", {})))
        elif message.get("method") == "Network.requestWillBeSentExtraInfo":
            extra[params["requestId"]] = json.dumps(params.get("headers", {}))
    return [(url, body, headers + extra.get(key, "")) for key, (url, body, headers) in made.items()]


def national(e164):
    digits = e164.replace(" ", "")
    return "0" + digits[3:] if digits.startswith("+44") else digits


def spaced(national_):
    return f"{national_[:4]} {national_[4:7]} {national_[7:]}"  # 0118 496 0003


def main():
    print("The firm's admin adds its website: a source number and a pool of two")
    for number in [SOURCE, *POOL, FAMILY_POOL]:
        cli("tracking-numbers", "assign", number, "--source", "Website", "--channel", "organic")
    website = cli("websites", "create", "--name", "Smith & Co website", "--origin", ORIGIN, "--origin", CONSENT_MODE_ORIGIN,
                  "--replace", "020 7946 0000", "--source", "Website").get("website", {})
    cli("websites", "pool", website.get("websiteId", "none"), *POOL)
    key = website.get("siteKey")
    if failures or not key:
        finish("browser walk: the website tag (not set up)")
    pages = {"/": firm_page(key), "/consent-mode.html": firm_page(key, head="""
<script>window.dataLayer = window.dataLayer || []; function gtag() { dataLayer.push(arguments); }
gtag('consent', 'default', {analytics_storage: 'denied', ad_storage: 'denied'});</script>""")}
    servers = [serve(pages, PAGE_PORT), serve(pages, PAGE_PORT + 1)]
    visitor = new_browser()
    other = new_browser()
    admin = new_browser()
    try:
        print("A page on an origin that is not the website's: the tag is refused and the page keeps its number")
        visitor.get(f"{FOREIGN_ORIGIN}/?gclid={GCLID}")
        wait(visitor, lambda d: state(d).get("tag") == "refused", "the gateway refuses a foreign origin")
        check("020 7946 0000" in shown(visitor)["printed"] and state(visitor).get("number") == "", "the firm's own number stays")
        page(visitor, "website-tag-foreign-origin")

        print("Before consent: the source's number everywhere, nothing stored, no click id sent")
        sent(visitor)  # the foreign page's requests, looked at no further
        visitor.get(f"{ORIGIN}/?gclid={GCLID}&utm_source=google&utm_medium=cpc&utm_campaign=spring-injury")
        wait(visitor, lambda d: state(d).get("tag") == "ready", "the tag has its settings")
        add_later(visitor, "Out of hours: 020 7946 0000")
        before = wait(visitor, lambda d: SOURCE in shown(d)["later"] and shown(d), "content added after load shows the source's number")
        check(before and before["printed"] == "Call us on 0118 496 0002, from abroad on +44 118 496 0002 (or 01184960002).",
              f"the number as printed, international and unspaced ({before and before['printed']})")
        check(before and before["link"] == "tel:+441184960002", f"the tel: link ({before and before['link']})")
        check(stored(visitor) == {"cookie": "", "local": {}, "session": {}}, f"nothing stored on the device ({stored(visitor)})")
        requests = sent(visitor)
        elsewhere = [(url, body, headers) for url, body, headers in requests if not url.startswith(ORIGIN + "/")]
        check(elsewhere and not any(GCLID in url + body + headers for url, body, headers in elsewhere),
              f"no click id sent beyond the page's own origin before consent ({len(elsewhere)} requests)")
        asked = [url.split("?")[0] for url, _, _ in requests if "/dni/" in url]
        check(asked == [BASE + "/dni/v1/tag"], f"only the tag's settings asked ({asked})")
        page(visitor, "website-tag-before-consent")

        print("The banner's consent call: a pool number everywhere, the visitor id stored, the click id sent once")
        visitor.execute_script("window.calltrace.consent({analytics: true, ads: true})")
        reserved = wait(visitor, lambda d: state(d).get("reserved") and state(d)["number"], "a number is reserved")
        pool_number = national(reserved or "")
        check(spaced(pool_number) in POOL, f"a pool number ({reserved})")
        add_later(visitor, "Weekends: +44 20 7946 0000")
        after = wait(visitor, lambda d: shown(d)["later"].endswith("+44 " + spaced(pool_number)[1:]) and shown(d),
                     "content added after consent shows the pool number")
        check(after and after["printed"] == f"Call us on {spaced(pool_number)}, from abroad on +44 {spaced(pool_number)[1:]} (or {pool_number}).",
              f"the page shows the pool number ({after and after['printed']})")
        check(after and after["link"] == f"tel:+44{pool_number[1:]}" and spaced(pool_number) in after["later"], "the link and the later content too")
        kept = stored(visitor)
        check(kept["cookie"] == "" and kept["local"].get("calltrace_visitor", "").startswith("v1_") and list(kept["local"]) == ["calltrace_visitor"],
              f"the visitor id in localStorage, no cookie ({list(kept['local'])})")
        check(kept["session"].get("calltrace_visit", "").startswith("vis_"), "the visit id in sessionStorage")
        bodies = [json.loads(body) for url, body, _ in sent(visitor) if "/dni/v1/reserve" in url]
        check(len(bodies) == 1 and bodies[0]["clickIds"] == {"gclid": GCLID} and bodies[0]["utmCampaign"] == "spring-injury"
              and bodies[0]["landingPath"] == "/", f"the reservation carried the campaign and the click id ({bodies})")
        page(visitor, "website-tag-after-consent")

        print("The visitor stays: the reservation renews, the number stays")
        renewed = wait(visitor, lambda d: state(d).get("renewals", 0) >= 2 and state(d), "two renewals while the page stays")
        check(renewed and renewed["number"] == reserved, "the same number after renewing")

        print("A call to that number joins the visit and its campaign")
        call_id = "browser-dni-1"
        made = subprocess.run(os.environ["GATEWAY_CLIENT"].split() + [call_id, spaced(pool_number), "07700 900456", os.environ["CALL_WAV"]],
                              capture_output=True, text=True)
        check(made.returncode == 0, f"the C gateway client reports the call ({made.stderr.strip()[:200] or 'ok'})")
        call = cli("calls", "show", call_id).get("call", {})
        check(call.get("visitJoin") == "joined" and call.get("visit", {}).get("utmCampaign") == "spring-injury",
              f"the call joined the visit with its campaign ({call.get('visitJoin')}, {call.get('visit', {}).get('utmCampaign')})")
        check(call.get("visit", {}).get("clickIdKinds") == ["gclid"] and call.get("visit", {}).get("landingPath") == "/",
              "the visit's click id kind and landing page")

        print("Google Consent Mode: analytics granted without ads, then consent withdrawn")
        other.get(f"{CONSENT_MODE_ORIGIN}/consent-mode.html?gclid={GCLID}")
        wait(other, lambda d: state(d).get("tag") == "ready" and SOURCE in shown(d)["printed"], "the source's number before consent")
        check(stored(other) == {"cookie": "", "local": {}, "session": {}}, "Consent Mode's default denied: nothing stored")
        other.execute_script("gtag('consent', 'update', {analytics_storage: 'granted', ad_storage: 'denied'})")
        wait(other, lambda d: state(d).get("reserved") and spaced(national(state(d)["number"])) in POOL, "analytics_storage granted reserves a pool number")
        bodies = [json.loads(body) for url, body, _ in sent(other) if "/dni/v1/reserve" in url]
        check(len(bodies) == 1 and bodies[0]["clickIds"] == {}, f"no click id without ad_storage ({bodies})")
        check(stored(other)["local"].get("calltrace_visitor", "").startswith("v1_"), "the visitor id stored")
        page(other, "website-tag-consent-mode")
        other.execute_script("window.calltrace.consent({analytics: false})")
        wait(other, lambda d: not state(d).get("reserved") and SOURCE in shown(d)["printed"], "withdrawn: the source's number again")
        check(stored(other) == {"cookie": "", "local": {}, "session": {}}, "withdrawn: what was stored is gone")

        print("The admin adds the firm's family-law site on the Websites page and gives it a pool")
        sign_in(admin, FIRM, FIRM_ADMIN)
        admin.get(BASE + "/numbers/websites")
        listed = text(admin)
        check("Smith & Co website" in listed and ORIGIN in listed and "0 of 2 numbers held now" not in listed,
              "the website the CLI made is listed with its origins, and its pool in use")
        fill(admin, "name", "Smith & Co family law")
        fill(admin, "origins", "https://family.smith-law.example")
        fill(admin, "targets", "020 7946 0001")
        Select(admin.find_element(By.ID, "source")).select_by_visible_text("Website")
        submit(admin, "form[action='/numbers/websites'] button[type=submit]")
        check("Website added." in text(admin), "the new website is added")
        family = "//section[h2[normalize-space()='Smith & Co family law']]"
        taken = admin.find_elements(By.XPATH, f"{family}//input[@name='number-+44{POOL[0].replace(' ', '')[1:]}']")
        check(len(taken) == 1 and not taken[0].is_enabled(), "a number in the other website's pool cannot be ticked")
        admin.find_element(By.XPATH, f"{family}//input[@name='number-+44{FAMILY_POOL.replace(' ', '')[1:]}']").click()
        navigate(admin, lambda: admin.find_element(By.XPATH, f"{family}//form[contains(@action, '/pool')]//button").click(), "saving the pool")
        check("Pool saved." in text(admin), "the pool is saved")
        facts = admin.find_element(By.XPATH, family).text
        check("0 of 1 numbers held now" in facts and "https://family.smith-law.example" in facts, f"the family site's pool of one ({facts[:160]})")
        page(admin, "websites")

        print("The call's page: the website visit that brought it, and the outcome the AI suggests")
        cli("transcripts", "submit", call_id, stdin="[0.0-6.0] caller: Hello, I was injured in a car accident last week and I would like to make a claim.\n"
            "[6.0-9.0] firm: Of course, we can help with that. Can I take your details?\n")
        def call_page(driver):
            driver.get(f"{BASE}/calls/{call_id}")
            return "Suggested by the AI" in text(driver)
        wait(admin, call_page, "the call's page shows the AI's suggestion once the analysis is in", timeout=60)
        shown_call = text(admin)
        check("Website visit" in shown_call and "spring-injury" in shown_call and "gclid" in shown_call,
              "the Website visit section: its campaign and the ad click")
        check("The AI suggests: New enquiry" in shown_call and not admin.find_elements(By.CSS_SELECTOR, "input[name=enquiry]:checked"),
              "the outcome form shows the suggestion and leaves the choice to a person")
        page(admin, "call-website-visit")
    finally:
        for driver in (visitor, other, admin):
            driver.quit()
        for server in servers:
            server.shutdown()
    finish("browser walk: the website tag")


if __name__ == "__main__":
    main()
