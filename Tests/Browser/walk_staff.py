"""The web app walked in a real headless Chromium, as a firm's staff use it: invitations, two-factor,
the calls, the player, outcomes, share links, roles and another firm's ids.

Run by scripts/browser-test.sh (part of `make test`) against the four services and calltrace-web
started as processes, with one firm set up by the CLI (a tracking number, a recorded call with
its transcript) and a second firm. Every page is checked with axe-core (no serious or critical
violations) and photographed at desktop and phone width under .build/screenshots.
"""
import os
import re
import subprocess
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browserkit import *  # noqa: F403 (the walks' shared vocabulary)


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
        navigate(admin, lambda: admin.find_element(By.LINK_TEXT, "Settings").click(), "Settings")
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
        # The QR code read from its picture, as the member's phone does (browserkit.enrol_two_factor).
        totp = enrol_two_factor(member, "mia@smith.example", "two-factor", photograph=True)
        if totp is None:
            finish("browser walk: staff")
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
            navigate(member, link[0].click, "the call's link")
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

        print("A new enquiry: the member calls the caller back through the telephony gateway, their own phone first")
        fill(member, "callback-phone", "0118 496 0100")
        submit(member, "form[action$='/callback'] button")
        wait(member, lambda d: "Your phone will ring now" in text(d), "the call back is placed")
        page(member, "call-callback")

        print("The member makes an API token; the calltrace CLI works with it, through the web app, until it is revoked")
        navigate(member, lambda: member.get(BASE + "/account"), "the account page")
        navigate(member, lambda: member.find_element(By.LINK_TEXT, "make and revoke API tokens").click(), "the API tokens page")
        fill(member, "token-name", "Mia's laptop")
        for label in ("Read calls and transcripts", "Read reports and numbers"):
            member.find_element(By.XPATH, f"//label[contains(., '{label}')]/input").click()
        submit(member, "form[action='/account/api-tokens'] button[type=submit]")
        made = wait(member, lambda d: d.find_elements(By.ID, "new-token"), "the new token is shown once")
        secret = made[0].get_attribute("value") if made else ""
        check(secret.startswith("ctk_"), "the token is shown, once, on the page that made it")
        page(member, "api-tokens")
        cli = dict(os.environ, CALLTRACE_URL=BASE, CALLTRACE_ORG=FIRM, CALLTRACE_TOKEN=secret, HOME=SHOTS)
        for key in ("CALLTRACE_PKI", "CALLTRACE_AS"):
            cli.pop(key, None)
        listed = subprocess.run([os.environ["CALLTRACE_CLI"], "calls", "list"], env=cli, capture_output=True, text=True)
        check(listed.returncode == 0 and CALL in listed.stdout, f"calltrace calls list, with the token and no certificate, shows the call ({listed.stderr.strip()})")
        member.get(BASE + "/account/api-tokens")
        submit(member, "form[action$='/revoke'] button")
        wait(member, lambda d: "Token revoked" in text(d), "the token is revoked")
        who = subprocess.run([os.environ["CALLTRACE_CLI"], "whoami"], env=cli, capture_output=True, text=True)
        check(who.returncode == 4, f"the revoked token opens nothing: exit {who.returncode}")
        navigate(member, lambda: member.get(BASE + f"/calls/{CALL}"), "the call again")

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
        check(not analyst.find_elements(By.CSS_SELECTOR, "form[action$='/callback']"), "the analyst has no Call back button")
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
    finish("browser walk: staff")


if __name__ == "__main__":
    main()
