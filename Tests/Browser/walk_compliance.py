"""The firm's DPO in a real headless Chromium: a subject request opened, its caller's calls found,
the identity check recorded, the access bundle built and downloaded (the file in Chromium's
download folder checked against the SHA-256 its page shows), a call's deletion page, and the
settings pages. Nothing here deletes or offboards: the other walks use the firm and its call,
and the Swift tests (SubjectRequestPagesTests, SettingsPagesTests) cover the destructive steps.
"""
import datetime
import glob
import hashlib
import os
import re
import shutil
import time

from selenium.webdriver.common.by import By

from browserkit import *  # noqa: F403 (the walks' shared vocabulary)

DOWNLOADS = os.path.abspath(os.path.join(SHOTS, "..", "browser-downloads"))


def downloaded(folder):
    done = [path for path in glob.glob(os.path.join(folder, "*.tar"))]
    return done if done and not glob.glob(os.path.join(folder, "*.crdownload")) else None


def main():
    shutil.rmtree(DOWNLOADS, ignore_errors=True)
    os.makedirs(DOWNLOADS)
    dpo = new_browser()
    # Chromium saves downloads here, without asking.
    dpo.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": DOWNLOADS})
    try:
        print("The firm's admin opens a subject request for the caller's number")
        sign_in(dpo, FIRM, FIRM_ADMIN)
        wait(dpo, lambda d: d.current_url.endswith("/calls"), "the admin is signed in")
        navigate(dpo, lambda: dpo.find_element(By.LINK_TEXT, "Requests").click(), "Requests")
        wait(dpo, lambda d: "Subject requests" in text(d), "Requests opens the subject requests")
        page(dpo, "requests")
        navigate(dpo, lambda: dpo.find_element(By.LINK_TEXT, "Open a new request").click(), "Open a new request")
        page(dpo, "request-new")
        dpo.find_element(By.CSS_SELECTOR, "input[name=kind][value=access]").click()
        fill(dpo, "numbers", "07700 900123")
        fill(dpo, "notes", "Asked by letter for a copy of their calls.")
        submit(dpo, "form[action='/requests'] button")
        wait(dpo, lambda d: "The request is open" in text(d), "the request is opened")
        check("Not yet checked" in text(dpo) and "Due" in text(dpo), "the request shows its due date and the identity check to do")
        request = dpo.current_url.split("?")[0]
        page(dpo, "request")
        dpo.get(BASE + "/requests")
        check(dpo.find_elements(By.CSS_SELECTOR, f"a[href='{request[len(BASE):]}']"), "the open list shows the request with its due date")
        page(dpo, "requests-open")
        dpo.get(request)
        submit(dpo, "form[action$='/calls'] button")
        wait(dpo, lambda d: "call(s) from these numbers" in text(d), "the caller's calls are found")
        check(dpo.find_elements(By.CSS_SELECTOR, f"a[href='/calls/{CALL}']"), "the recorded call is among them")
        page(dpo, "request-located")

        print("The identity check is recorded, the access bundle built and downloaded")
        dpo.find_element(By.CSS_SELECTOR, "input[name=result][value=passed]").click()
        submit(dpo, "form[action$='/identity'] button")
        wait(dpo, lambda d: "The identity check is recorded" in text(d), "the identity check is recorded")
        submit(dpo, "form[action$='/bundle'] button")
        wait(dpo, lambda d: "/bundles/" in d.current_url, "the bundle's page opens")
        bundle = dpo.current_url
        for _ in range(30):
            if "being built" not in text(dpo):
                break
            time.sleep(1)
            dpo.get(bundle)
        digest = dpo.find_elements(By.CSS_SELECTOR, "code.digest")
        check(digest, "the bundle's page shows its SHA-256 before download")
        page(dpo, "bundle")
        if digest:
            shown = digest[0].text.strip()
            size = int(re.search(r"\((\d+) bytes\)", text(dpo)).group(1))
            dpo.find_element(By.PARTIAL_LINK_TEXT, "Download the bundle").click()
            files = wait(dpo, lambda d: downloaded(DOWNLOADS), "the bundle is saved in the download folder", timeout=60)
            if files:
                with open(files[0], "rb") as handle:
                    data = handle.read()
                check(len(data) == size, f"the downloaded bundle is whole ({len(data)} of {size} bytes)")
                check(hashlib.sha256(data).hexdigest() == shown, "its SHA-256 is the one the page showed")
                check(os.path.basename(files[0]).startswith("subject-access-"), "it is saved under a plain name")
        dpo.get(request)
        fill(dpo, "outcome", "Bundle sent by secure e-mail on " + datetime.date.today().strftime("%-d %B %Y") + ".")
        submit(dpo, "form[action$='/close'] button")
        wait(dpo, lambda d: "The request is closed" in text(d), "the request is closed")
        page(dpo, "request-closed")

        print("The call's page offers export and deletion; deletion names what goes (not confirmed here)")
        dpo.get(f"{BASE}/calls/{CALL}")
        check("Export to matter file" in text(dpo), "the call page offers the matter-file export")
        navigate(dpo, lambda: dpo.find_element(By.PARTIAL_LINK_TEXT, "Delete this call").click(), "Delete this call")
        check("the recording" in text(dpo) and "the transcript" in text(dpo) and "share link" in text(dpo), "the confirmation names what goes")
        page(dpo, "call-delete")

        print("The settings pages (looked at, not changed: the other walks use this firm)")
        navigate(dpo, lambda: dpo.find_element(By.LINK_TEXT, "Settings").click(), "Settings")
        for name, path, says in (("settings-security", "/settings/security", "Security policy"), ("settings-retention", "/settings/retention", "Receipts of past runs"),
                                 ("settings-transcription", "/settings/transcription", "Transcription is on"),
                                 ("settings-agreement", "/settings/agreement", "Accepted"), ("settings-sub-processors", "/settings/sub-processors", "Deepgram"),
                                 ("settings-notices", "/settings/notices", "Greeting on returned calls"),
                                 ("settings-support", "/settings/support", "Support access"),
                                 ("settings-offboarding", "/settings/offboarding", "Start leaving")):
            navigate(dpo, lambda: dpo.find_element(By.CSS_SELECTOR, f"nav.subnav a[href='{path}']").click(), path)
            check(says in text(dpo), f"{path} shows “{says}”")
            page(dpo, name)

        print("Webhooks: one added (its signing secret shown once), looked at, and deleted (its API token with it)")
        navigate(dpo, lambda: dpo.find_element(By.CSS_SELECTOR, "nav.subnav a[href='/settings/webhooks']").click(), "/settings/webhooks")
        check("Add a webhook" in text(dpo), "the webhooks page offers to add one")
        page(dpo, "settings-webhooks")
        fill(dpo, "url", "https://127.0.0.1:9/hooks/calltrace")  # this run's gateway allows a private address (browser-test.sh)
        submit(dpo, "form[action='/settings/webhooks'] button[type=submit]")
        wait(dpo, lambda d: "copy its signing secret now" in text(d), "the webhook is added, its secret shown once")
        page(dpo, "settings-webhooks-added")
        navigate(dpo, lambda: dpo.find_element(By.LINK_TEXT, "See this webhook").click(), "the webhook's page")
        check("Delete webhook" in text(dpo), "the webhook's page offers its actions")
        page(dpo, "settings-webhook")
        submit(dpo, "form[action$='/delete'] button")
        wait(dpo, lambda d: "Webhook deleted" in text(d), "the webhook is deleted")
        check("127.0.0.1:9" not in text(dpo), "the deleted webhook is no longer listed")
    finally:
        dpo.quit()
    finish("browser walk: compliance")


if __name__ == "__main__":
    main()
