"""The web app with the keyboard alone, in a real headless Chromium: a member who uses no mouse
signs in (password and the authenticator's code), goes to the calls through the navigation, opens
the call, plays it and seeks, marks its outcome and signs out, pressing only Tab, Shift+Tab, Enter,
Space and the arrow keys (and typing into fields). No click is made in that browser: every key goes
through ActionChains to whatever has the focus.

On the way it checks what keyboard users need: "Skip to content" is the first tab stop, is seen
when focused and moves the focus to the page's content; every element that takes the focus shows
a focus ring (its computed outline or box-shadow, compared with the same element unfocused); the
sign-in page's tab order is its visual order, backwards as forwards; and Tab through a whole page
reaches every control and comes back to the top (no keyboard trap). The member is invited and
turns on two-factor in a second browser first (by mouse, from the QR code's picture).
"""
import time

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from browserkit import *  # noqa: F403 (the walks' shared vocabulary)

EMAIL = "kim@smith.example"

# Every element that can take the focus, with its look unfocused (outline and box-shadow), kept
# by the page so the focused look can be compared with it.
BASELINE = """
    window.__unfocused = new Map();
    document.activeElement && document.activeElement !== document.body && document.activeElement.blur();
    document.querySelectorAll('a[href], button, input, select, textarea, summary, audio[controls], [tabindex]').forEach(e => {
        const s = getComputedStyle(e);
        window.__unfocused.set(e, [s.outlineStyle, s.outlineWidth, s.boxShadow]);
    });"""

# What has the focus: the element, a name for it, where it is, whether it is on the screen and
# whether it looks focused (an outline of 2px or more, or a box-shadow, that it has not unfocused).
FOCUSED = """
    const e = document.activeElement;
    if (!e || e === document.body || e === document.documentElement) return null;
    const s = getComputedStyle(e), r = e.getBoundingClientRect();
    const before = (window.__unfocused && window.__unfocused.get(e)) || ['none', '0px', 'none'];
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 && (s.outlineStyle !== before[0] || s.outlineWidth !== before[1]);
    const shadow = s.boxShadow !== 'none' && s.boxShadow !== before[2];
    const label = e.getAttribute('aria-label') || (e.labels && e.labels.length ? e.labels[0].textContent : '') || e.textContent || e.id;
    return {element: e, tag: e.tagName.toLowerCase(), id: e.id, type: e.type || '', name: e.name || '', value: e.value || '',
            href: e.getAttribute('href') || '', label: label.replace(/\\s+/g, ' ').trim().slice(0, 60),
            top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left + scrollX,
            shown: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth,
            ring: outline || shadow, look: s.outlineStyle + ' ' + s.outlineWidth + ' / ' + s.boxShadow,
            focusVisible: e.matches(':focus-visible')};"""

# The page's tab stops as a browser makes them: focusable, shown, not disabled; radio buttons by group.
TAB_STOPS = """
    const stops = [...document.querySelectorAll('a[href], button, input, select, textarea, summary, audio[controls], [tabindex]')]
        .filter(e => e.tabIndex >= 0 && !e.disabled && e.type !== 'hidden' && e.getClientRects().length > 0
                  && getComputedStyle(e).visibility !== 'hidden' && !e.closest('details:not([open]) > :not(summary)'));
    return [stops.filter(e => e.type !== 'radio'), [...new Set(stops.filter(e => e.type === 'radio').map(e => e.name))]];"""


def press(driver, *keys):
    ActionChains(driver).send_keys(*keys).perform()


def shift_tab(driver):
    ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()


class Keyboard:
    """One browser driven by keys alone, keeping what each page's focus showed."""

    def __init__(self, driver):
        self.driver = driver
        self.page = None

    def start(self, name):
        """A page just loaded: its unfocused looks noted, and its tally of focused elements begun."""
        self.page, self.visited, self.unmarked = name, [], []
        self.driver.execute_script(BASELINE)

    def tab(self, back=False):
        if back:
            shift_tab(self.driver)
        else:
            press(self.driver, Keys.TAB)
        return self.focused()

    def focused(self):
        info = self.driver.execute_script(FOCUSED)
        if info is not None:
            self.visited.append(info)
            if not (info["ring"] and info["shown"]) and info["tag"] != "main":
                self.unmarked.append(f"{info['tag']} {info['label']!r} ({info['look']}, on screen: {info['shown']})")
        return info

    def tab_to(self, match, what, back=False, limit=120):
        """Tab (or Shift+Tab) until `match(info)`; the focused info, or None (a failed check)."""
        for _ in range(limit):
            info = self.tab(back)
            if info is not None and match(info):
                return info
        check(False, f"{self.page}: Tab reaches {what}")
        return None

    def type(self, text):
        """Types into the focused field what it should hold (Ctrl+A first, so it replaces what was there)."""
        ActionChains(self.driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(Keys.DELETE).perform()
        press(self.driver, text)

    def go(self, keys, what):
        """Presses `keys` on the focused element and waits for the next page."""
        navigate(self.driver, lambda: press(self.driver, keys), what)

    def finish_page(self):
        shown = len(self.visited)
        check(shown > 0 and not self.unmarked,
              f"{self.page}: each of the {shown} elements focused shows a focus ring on screen" + (f" (not: {self.unmarked[:4]})" if self.unmarked else ""))

    def round_trip(self):
        """Tab from the top through the whole page: every tab stop is reached, and the focus comes
        back to the first one (no keyboard trap). The tab stops in the order reached."""
        driver = self.driver
        stops, groups = driver.execute_script(TAB_STOPS)
        first = self.tab()
        order, came_back = [first] if first else [], False
        for _ in range(len(stops) + 4 * len(groups) + 30):  # the player's own buttons are stops inside one element
            info = self.tab()
            if info is None:
                continue  # between the page's last stop and its first, the browser's own
            if first and info["element"] == first["element"]:
                came_back = True
                break
            if not order or info["element"] != order[-1]["element"]:
                order.append(info)
        reached = [o["element"] for o in order]
        missed = [s for s in stops if s not in reached]
        radios = {o["name"] for o in order if o["type"] == "radio"}
        check(first is not None and first["label"] == "Skip to content" and first["href"] == "#main",
              f"{self.page}: the first tab stop is the skip link ({first and first['label']!r})")
        check(not missed and radios == set(groups),
              f"{self.page}: Tab reaches all {len(stops)} controls and {len(groups)} radio group(s)"
              + (f" (missed {len(missed)}: {[m.get_attribute('outerHTML')[:80] for m in missed[:3]]})" if missed else ""))
        check(came_back, f"{self.page}: Tab through the page ({len(order)} stops) comes back to the top: no keyboard trap")
        return order


def reading_order(order):
    """The first pair of tab stops out of reading order (a later one above, or left of it on the same line), or None."""
    for a, b in zip(order, order[1:]):
        same_line = b["top"] < a["bottom"] and a["top"] < b["bottom"]
        if (same_line and b["left"] <= a["left"]) or (not same_line and b["top"] < a["top"]):
            return (a["label"], b["label"])
    return None


def reached(driver, condition, what):
    """A check that `condition` comes true (waited for)."""
    check(bool(wait(driver, condition, what)), what)


def audio(driver, expression):
    return driver.execute_script("const a = document.getElementById('player'); return " + expression)


def main():
    admin = new_browser()
    setup = new_browser()
    keys = new_browser()
    try:
        print("An admin invites Kim, who turns on two-factor (in another browser, by mouse)")
        sign_in(admin, FIRM, FIRM_ADMIN)
        wait(admin, lambda d: d.current_url.endswith("/calls"), "the admin is signed in")
        admin.get(BASE + "/settings/users")
        fill(admin, "invite-name", "Kim Keys")
        fill(admin, "invite-email", EMAIL)
        Select(admin.find_element(By.ID, "invite-role")).select_by_value("member")
        submit(admin, "form[action='/settings/users/invite'] button")
        wait(admin, lambda d: "Invitation sent" in text(d), "Kim is invited")
        accept_invitation(setup, EMAIL)
        sign_in(setup, FIRM, EMAIL)
        wait(setup, lambda d: d.current_url.endswith("/calls"), "Kim is signed in to set up two-factor")
        totp = enrol_two_factor(setup, EMAIL, "keyboard-two-factor")
        if totp is None:
            finish("browser walk: keyboard")
        submit(setup, "form[action='/sign-out'] button")

        print("Kim signs in with the keyboard: the skip link first, the fields in their visual order")
        kb = Keyboard(keys)
        keys.get(BASE + "/sign-in")
        page(keys, "keyboard-sign-in")
        kb.start("sign-in")
        order = kb.round_trip()
        labels = [o["label"] for o in order]
        expected = ["Skip to content", "CallTrace", "Firm ID", "E-mail address", "Password", "Code from your authenticator app",
                    "Sign in", "Forgotten your password?"]
        check(labels == expected, f"sign-in: the tab order is {expected} ({labels})")
        check(reading_order(order) is None, f"sign-in: each tab stop is after the last in reading order (not: {reading_order(order)})")
        backwards = [kb.tab(back=True) for _ in range(len(order))]
        # Back from the first stop, the focus leaves the page once, then comes in at its last stop.
        backwards = [b["label"] for b in backwards if b is not None]
        check(backwards[:len(order) - 1] == list(reversed(labels))[:len(order) - 1],
              f"sign-in: Shift+Tab goes back in the reverse order ({backwards})")
        kb.finish_page()
        keys.get(BASE + "/sign-in")  # afresh: the focus at the top of the page
        kb.start("sign-in, typed")
        skip = kb.tab()
        check(skip is not None and skip["label"] == "Skip to content" and skip["shown"] and skip["ring"],
              "sign-in: the skip link, focused, is on screen with its focus ring")
        keys.save_screenshot(f"{SHOTS}/keyboard-sign-in-skip-link.png")
        press(keys, Keys.ENTER)
        reached(keys, lambda d: d.execute_script("return document.activeElement.id") == "main", "sign-in: Enter on the skip link moves the focus to the content")
        first_field = kb.tab()
        check(first_field is not None and first_field["id"] == "firm", f"sign-in: after the skip link, Tab goes to the first field ({first_field and first_field['label']})")
        kb.type(FIRM)
        kb.tab_to(lambda i: i["id"] == "email", "the e-mail field")
        kb.type(EMAIL)
        kb.tab_to(lambda i: i["id"] == "password", "the password field")
        kb.type(PASSWORD)
        kb.tab_to(lambda i: i["id"] == "code", "the code field")
        keys.save_screenshot(f"{SHOTS}/keyboard-sign-in-code-focused.png")
        # The next 30-second step's code: the one used to confirm two-factor is refused as used.
        kb.type(totp.at(time.time() + 30))
        kb.finish_page()
        kb.go(Keys.ENTER, "Enter in the code field")
        reached(keys, lambda d: d.current_url.endswith("/calls"), "Enter signs Kim in")

        print("Kim goes through the navigation to the account, back to the calls, and opens the call")
        kb.start("calls")
        kb.tab_to(lambda i: i["tag"] == "a" and i["label"] == "Account", "Account in the navigation")
        kb.finish_page()
        kb.go(Keys.ENTER, "Account")
        reached(keys, lambda d: d.current_url.endswith("/account"), "Enter on Account opens the account page")
        kb.start("account")
        link = kb.tab_to(lambda i: i["tag"] == "a" and i["label"] == "Calls", "Calls in the navigation")
        kb.finish_page()
        if link:
            kb.go(Keys.ENTER, "Calls")
        reached(keys, lambda d: d.current_url.endswith("/calls"), "Enter on Calls opens the calls list")
        kb.start("calls")
        kb.round_trip()  # the filters' date fields hold several stops each (day, month, year, calendar)
        check(keys.execute_script("return document.querySelector('nav a[aria-current=page]').textContent") == "Calls",
              "calls: the navigation marks Calls as the current page (not by colour alone: bold and underlined)")
        call = kb.tab_to(lambda i: i["href"] == f"/calls/{CALL}", "the call's link")
        keys.save_screenshot(f"{SHOTS}/keyboard-calls-link-focused.png")
        kb.finish_page()
        if call:
            kb.go(Keys.ENTER, "the call's link")
        reached(keys, lambda d: d.find_elements(By.ID, "player"), "Enter on the call's link opens the call")
        page(keys, "keyboard-call")
        kb.start("call")
        kb.round_trip()

        print("Kim plays the recording and seeks with the keyboard")
        # Each seek the player makes is noted (playing on does not fire "seeked").
        keys.execute_script("const a = document.getElementById('player'); window.__seeks = [];"
                            "a.addEventListener('seeked', () => window.__seeks.push(a.currentTime));")
        player = kb.tab_to(lambda i: i["id"] == "player", "the player")
        keys.save_screenshot(f"{SHOTS}/keyboard-call-player-focused.png")
        if player:
            press(keys, Keys.SPACE)
            started = wait(keys, lambda d: audio(d, "!a.paused && a.currentTime > 0"), "call: Space on the player's play button plays the recording")
            check(bool(started), "call: the player starts with the keyboard (Space on its focused play button)")
            # Chromium's own controls after the play button (a timeline, mute, a menu): Tab reaches them, but
            # headless Chromium's do not seek with the arrow keys. Tried on each and reported, not required.
            stops, jumps = 1, []
            for _ in range(8):
                before = audio(keys, "a.currentTime")
                press(keys, Keys.TAB)
                if keys.execute_script("return document.activeElement.id") != "player":
                    break
                stops += 1
                keys.execute_script("window.__seeks = []")
                press(keys, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
                jumps += [t for t in keys.execute_script("return window.__seeks") if t > before + 2]
            print(f"        the player's own controls: {stops} tab stop(s); the arrow keys on them seek forward: {bool(jumps)} {jumps}")
            native = bool(jumps)
            # The transcript's times are buttons: Enter on one plays the recording from there.
            seek = kb.tab_to(lambda i: i["tag"] == "button" and i["label"] == "Play from 0:09", "the transcript's 0:09 button")
            if seek:
                keys.execute_script("window.__seeks = []")
                press(keys, Keys.ENTER)
                sought = wait(keys, lambda d: d.execute_script("return window.__seeks.some(t => t >= 9 && t < 10)") and audio(d, "!a.paused"),
                              "call: Enter on the transcript's 0:09 plays from 0:09")
                check(bool(sought), "call: the keyboard seeks: Enter on a transcript line's time plays the recording from it"
                                    f" (the player's own controls: {'seek with arrows too' if native else 'Tab reaches them, the arrows do not seek'})")
            keys.save_screenshot(f"{SHOTS}/keyboard-call-seek-focused.png")

        print("Kim marks the outcome with arrows, typing and Enter")
        radio = kb.tab_to(lambda i: i["type"] == "radio" and i["name"] == "enquiry", "the new-enquiry choice")
        if radio:
            press(keys, Keys.ARROW_DOWN)
            press(keys, Keys.ARROW_UP)
            check(kb.focused()["value"] == "new" and keys.execute_script("return document.querySelector('input[name=enquiry]:checked').value") == "new",
                  "call: the arrow keys choose among the enquiry's radio buttons")
        matter = kb.tab_to(lambda i: i["type"] == "radio" and i["name"] == "matter", "the matter choice")
        if matter:
            check(matter["value"] == "no", "call: Tab goes into the matter group at its checked choice (No)")
            press(keys, Keys.ARROW_UP)
            check(keys.execute_script("return document.querySelector('input[name=matter]:checked').value") == "yes", "call: Up chooses Yes")
        kb.tab_to(lambda i: i["id"] == "reference", "the matter reference")
        kb.type("KB/0007")
        area = kb.tab_to(lambda i: i["id"] == "area", "the practice area")
        if area:
            press(keys, Keys.ARROW_DOWN)
            check(keys.execute_script("const s = document.getElementById('area'); return s.options[s.selectedIndex].text") == "Personal injury",
                  "call: Down on the practice area chooses the next one")
        save = kb.tab_to(lambda i: i["tag"] == "button" and i["label"] == "Save outcome", "Save outcome")
        keys.save_screenshot(f"{SHOTS}/keyboard-call-save-focused.png")
        kb.finish_page()
        if save:
            kb.go(Keys.ENTER, "Save outcome")
        reached(keys, lambda d: "The outcome is saved" in text(d), "Enter on Save outcome saves it")
        check("Opened, reference KB/0007 (Personal injury)" in text(keys), "call: the call shows the matter marked by keyboard")

        print("Kim signs out with Shift+Tab back to the header")
        kb.start("call-saved")
        out = kb.tab_to(lambda i: i["tag"] == "button" and i["label"] == "Sign out", "Sign out", back=True)
        keys.save_screenshot(f"{SHOTS}/keyboard-sign-out-focused.png")
        kb.finish_page()
        if out:
            kb.go(Keys.SPACE, "Sign out")
        reached(keys, lambda d: "You have signed out" in text(d), "Space on Sign out signs Kim out")
        page(keys, "keyboard-signed-out")
    finally:
        for driver in (admin, setup, keys):
            driver.quit()
    finish("browser walk: keyboard")


if __name__ == "__main__":
    main()
