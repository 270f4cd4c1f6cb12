"""Reports, tracking numbers and the audit trail walked in a real headless Chromium: the firm's
admin reads the attribution report and its chart, downloads the CSV, assigns a tracking number,
routes the firm's number to its office (a premium-rate phone refused on the form first), blocks
a nuisance caller and unblocks them, reads the audit trail, verifies the chain and exports it;
an analyst they invite sees the report, the numbers and their routing, but no forms and no
audit trail.

Run by scripts/browser-test.sh after the staff walk (same firms and call). Every page is checked
with axe-core and photographed at desktop and phone width under .build/screenshots.
"""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browserkit import *  # noqa: F403 (the walks' shared vocabulary)


def fetch(driver, path):
    """(status, headers we look at, body) of a same-origin GET made by the page's own session."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(async r => done([r.status,
            {type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), cache: r.headers.get('cache-control')},
            await r.text()])).catch(e => done([0, {}, String(e)]));""", path)


def main():
    admin = new_browser()
    analyst = new_browser()
    admin.set_script_timeout(60)
    try:
        print("The admin reads the attribution report, its chart and its CSV")
        sign_in(admin, FIRM, FIRM_ADMIN)
        wait(admin, lambda d: d.current_url.endswith("/calls"), "the admin is signed in")
        navigate(admin, lambda: admin.find_element(By.LINK_TEXT, "Reports").click(), "Reports")
        wait(admin, lambda d: "/reports" in d.current_url, "Reports opens the report")
        chart = admin.find_elements(By.CSS_SELECTOR, "svg.chart[role=img]")
        check(bool(chart) and chart[0].get_attribute("aria-label").startswith("Calls, new enquiries and matters"), "the chart is one labelled image")
        check("Google Ads - personal injury" in text(admin), "the report names the call's source")
        check(any(t.text.endswith(" call") or t.text.endswith(" calls") for t in admin.find_elements(By.CSS_SELECTOR, "svg.chart text")), "bars carry their numbers")
        page(admin, "reports")
        Select(admin.find_element(By.ID, "by")).select_by_value("channel")
        submit(admin, "form.filters button")
        check("Google Ads" in text(admin) and "by channel" in text(admin), "the report groups by channel")
        page(admin, "reports-by-channel")
        csv_link = admin.find_element(By.LINK_TEXT, "Download as CSV").get_attribute("href")
        status, headers, body = fetch(admin, csv_link)
        check(status == 200 and (headers.get("disposition") or "").startswith("attachment"), f"the CSV downloads ({status}, {headers})")
        check(body.startswith('"Channel","Calls"') and '"All calls"' in body, "the CSV has its header and total")

        print("The admin assigns a tracking number to a new source")
        navigate(admin, lambda: admin.find_element(By.LINK_TEXT, "Numbers").click(), "Numbers")
        check("0118 496 0001" in text(admin), "the firm's number is listed as people write it")
        page(admin, "numbers")
        fill(admin, "number", "0118 496 0777")
        fill(admin, "source", "Radio advert - Reading")
        Select(admin.find_element(By.ID, "channel")).select_by_value("other")
        fill(admin, "campaign", "Spring")
        submit(admin, "form[action='/numbers/assign'] button")
        wait(admin, lambda d: "Saved." in text(d), "the number is assigned")
        check("Radio advert - Reading" in text(admin), "the new source is listed")
        admin.find_element(By.CSS_SELECTOR, "details.confirm summary").click()
        page(admin, "numbers-assigned")

        print("The admin routes the firm's number to the office; a premium-rate phone is refused on the form")
        navigate(admin, lambda: admin.find_element(By.CSS_SELECTOR, "a[href='/numbers/routing?number=%2B441184960001']").click(), "Change routing")
        check("Routing for 0118 496 0001" in text(admin), "the routing form names the number")
        fill(admin, "destination-1", "020 7946 0000")
        fill(admin, "destination-2", "0906 123 4567")
        fill(admin, "ring", "25")
        admin.find_element(By.CSS_SELECTOR, "input[name=hours][value=set]").click()
        for field, value in (("opens-6", "10:00"), ("closes-6", "13:00")):  # a time input's typing depends on the locale
            admin.execute_script("arguments[0].value = arguments[1]", admin.find_element(By.ID, field), value)
        fill(admin, "out-of-hours", "The office is closed. Please leave a message after the tone.")
        admin.find_element(By.CSS_SELECTOR, "input[name=voicemail]").click()
        page(admin, "routing")
        submit(admin, "#routing-form button[type=submit]")
        check("Phone 2 is a premium-rate, personal or pager number" in text(admin), "the premium-rate phone is refused, in the form's words")
        check(admin.find_element(By.ID, "destination-1").get_attribute("value") == "020 7946 0000"
              and admin.find_element(By.ID, "closes-6").get_attribute("value") == "13:00", "what was typed is kept")
        page(admin, "routing-refused")
        check(admin.find_element(By.CSS_SELECTOR, "#problem a").get_attribute("href").endswith("#destination-2"), "the problem links to its field")
        fill(admin, "destination-2", "")
        submit(admin, "#routing-form button[type=submit]")
        wait(admin, lambda d: "Routing saved." in text(d), "the routing is saved")
        summary = admin.find_element(By.XPATH, "//td[contains(., '0118 496 0001')]/..//ul[@data-test='routing']").text
        check("Rings 020 7946 0000 for 25 seconds" in summary and "Open Mon–Fri 09:00–17:30, Sat 10:00–13:00 (UK time)" in summary
              and "Voicemail on" in summary, f"the number's routing is listed ({summary!r})")
        page(admin, "numbers-routed")

        print("The admin blocks a nuisance caller, then unblocks them")
        navigate(admin, lambda: admin.find_element(By.LINK_TEXT, "the block list").click(), "the block list")
        check("rejected before they ring the office" in text(admin), "the page says what blocking does")
        fill(admin, "block-number", "07700 900999")
        fill(admin, "reason", "repeated nuisance calls")
        submit(admin, "form[action='/numbers/blocked'] button")
        wait(admin, lambda d: "Blocked." in text(d), "the caller is blocked")
        rows = [r.text for r in admin.find_elements(By.CSS_SELECTOR, "[data-test=blocked-callers] tbody tr")]
        check(len(rows) == 1 and "07700 ••••99" in rows[0] and "repeated nuisance calls" in rows[0] and "900999" not in text(admin),
              f"the block list shows the caller masked, with the reason ({rows})")
        page(admin, "blocked")
        fill(admin, "unblock-number", "07700 900999")
        submit(admin, "form[action='/numbers/blocked/remove'] button")
        wait(admin, lambda d: "not on the block list now" in text(d), "the caller is unblocked")
        check("Nobody is blocked." in text(admin), "the block list is empty again")
        page(admin, "unblocked")

        print("The admin reads the audit trail, verifies the chain and exports it")
        navigate(admin, lambda: admin.find_element(By.LINK_TEXT, "Audit").click(), "Audit")
        wait(admin, lambda d: d.find_elements(By.CSS_SELECTOR, "table.audit tbody tr"), "the trail has events")
        page(admin, "audit")
        submit(admin, "form[action='/audit/verify'] button")
        wait(admin, lambda d: "Intact." in text(d), "the chain verifies")
        page(admin, "audit-verified")
        status, headers, body = fetch(admin, "/audit/export?format=jsonl")
        check(status == 200 and body.count("\n") > 0 and '"chain_index"' in body, f"the trail exports as JSON lines ({status})")
        status, headers, body = fetch(admin, "/audit/export?format=csv")
        check(status == 200 and body.startswith('"Chain index"'), f"the trail exports as CSV ({status})")

        print("The admin invites an analyst, who sees reports and numbers but no forms and no audit")
        navigate(admin, lambda: admin.find_element(By.LINK_TEXT, "Settings").click(), "Settings")
        fill(admin, "invite-name", "Rita Reports")
        fill(admin, "invite-email", "rita@smith.example")
        Select(admin.find_element(By.ID, "invite-role")).select_by_value("analyst")
        submit(admin, "form[action='/settings/users/invite'] button")
        wait(admin, lambda d: "Invitation sent" in text(d), "Rita is invited")
        accept_invitation(analyst, "rita@smith.example")
        sign_in(analyst, FIRM, "rita@smith.example")
        wait(analyst, lambda d: d.current_url.endswith("/calls"), "the analyst is signed in")
        links = [a.text for a in analyst.find_elements(By.CSS_SELECTOR, "nav a")]
        check("Reports" in links and "Numbers" in links and "Audit" not in links, f"the analyst's navigation ({links})")
        navigate(analyst, lambda: analyst.find_element(By.LINK_TEXT, "Reports").click(), "Reports")
        check(bool(analyst.find_elements(By.CSS_SELECTOR, "svg.chart")), "the analyst sees the report")
        page(analyst, "reports-analyst")
        navigate(analyst, lambda: analyst.find_element(By.LINK_TEXT, "Numbers").click(), "Numbers")
        check(not analyst.find_elements(By.CSS_SELECTOR, "form[action='/numbers/assign']") and "Radio advert - Reading" in text(analyst),
              "the analyst reads the numbers, without the forms")
        check("Rings 02079 ••••00 for 25 seconds" in text(analyst) and "020 7946 0000" not in text(analyst)
              and not analyst.find_elements(By.CSS_SELECTOR, "a[href^='/numbers/routing'], a[href='/numbers/blocked']"),
              "the analyst reads the routing, phones masked, with no way to change it")
        page(analyst, "numbers-analyst")
        analyst.get(BASE + "/audit")
        check("You do not have access" in text(analyst), "the analyst is refused the audit trail")
    finally:
        for driver in (admin, analyst):
            driver.quit()
    finish("browser walk: reports, numbers and audit")


if __name__ == "__main__":
    main()
