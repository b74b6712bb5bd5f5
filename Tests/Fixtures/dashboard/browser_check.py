#!/usr/bin/env python3
"""Drives the dashboard in headless Chromium (Selenium) and checks what a user would see.

    browser_check.py --url http://127.0.0.1:PORT/#token=TOKEN --expect-completed N --screenshot OUT.png
                     [--progress-job-id ID] [--replay-position P --replay-wait-completed M] [--timeout 180]

Checks, in order: the page loads and its live stream opens (#connection says "live"); the token left the address
bar and is not in the page's text; with --progress-job-id, that job's <progress> in #running grows at least once;
#count-completed reaches N without a reload; with --replay-position, the replay button of that #dlq row is
clicked and #count-completed reaches M; no console error (level SEVERE) at any point. The screenshot
(1280x900) is saved at the end, also after a failure. Exits 0 when every check passed, 1 naming the failed
check, 2 when the browser cannot be started.
Needs chromium, chromium-driver and selenium (scripts/bootstrap installs them).
"""
import argparse
import shutil
import sys
import time
import urllib.parse

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - reported to the caller
    print("browser_check: selenium is not installed (scripts/bootstrap installs it)", file=sys.stderr)
    sys.exit(2)


class CheckFailed(Exception):
    pass


def log(message):
    print(f"browser_check: {message}", flush=True)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the dashboard URL, with #token=… when the API has a token")
    parser.add_argument("--expect-completed", type=int, required=True, help="#count-completed must reach this")
    parser.add_argument("--screenshot", required=True, help="where to save a PNG of the page at the end")
    parser.add_argument("--progress-job-id", help="a job whose <progress> must be seen growing")
    parser.add_argument("--replay-position", help="the partition:offset of a #dlq row whose replay button is clicked")
    parser.add_argument("--replay-wait-completed", type=int, help="#count-completed to reach after the replay")
    parser.add_argument("--timeout", type=float, default=180, help="seconds for the whole check (default 180)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    arguments = parser.parse_args()
    if (arguments.replay_position is None) != (arguments.replay_wait_completed is None):
        parser.error("--replay-position and --replay-wait-completed go together")
    return arguments


def start_browser(arguments):
    options = webdriver.ChromeOptions()
    options.binary_location = arguments.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=arguments.chromedriver), options=options)


class Page:
    """The browser with a deadline and the console messages collected so far."""

    def __init__(self, driver, deadline):
        self.driver = driver
        self.deadline = deadline
        self.console = []

    def collect_console(self):
        try:
            self.console.extend(self.driver.get_log("browser"))
        except Exception as error:  # a dead browser: reported by the check that needed it
            log(f"could not read the console: {error}")

    def errors(self):
        return [entry for entry in self.console if entry.get("level") == "SEVERE"]

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, what, probe, interval=0.2):
        """Polls probe() until it returns a true value; fails naming `what` at the deadline (a callable `what`
        is called then, to describe the last state)."""
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > self.deadline:
                raise CheckFailed(f"timed out waiting for {what() if callable(what) else what}")
            self.collect_console()
            time.sleep(interval)

    def completed(self):
        text = self.js("const e = document.getElementById('count-completed'); return e ? e.textContent : null;")
        try:
            return int(str(text).strip())
        except ValueError:
            return None

    def wait_completed(self, expected):
        log(f"waiting for #count-completed to reach {expected}")
        seen = [None]

        def probe():
            seen[0] = self.completed()
            return seen[0] is not None and seen[0] >= expected
        self.wait(lambda: f"#count-completed to reach {expected} (it is {seen[0]})", probe)
        if seen[0] != expected:
            log(f"note: #count-completed is {seen[0]}, more than the {expected} expected")
        log(f"#count-completed is {seen[0]}")


PROGRESS_SCRIPT = """
const row = [...document.querySelectorAll('#running [data-job-id]')].find(r => r.getAttribute('data-job-id') === arguments[0]);
const bar = row ? row.querySelector('progress') : null;
if (!bar) return null;
const value = bar.hasAttribute('value') ? bar.value : Number(bar.dataset.bytes);
return isNaN(value) ? null : value;
"""


def check_progress(page, job_id):
    log(f"waiting for the <progress> of job {job_id} in #running")
    first = page.wait(f"a #running row with data-job-id={job_id!r} and a <progress>",
                      lambda: page.js(PROGRESS_SCRIPT, job_id), interval=0.05)
    log(f"job {job_id}: progress value {first}")
    state = {"last": first, "gone": False}

    def grew():
        value = page.js(PROGRESS_SCRIPT, job_id)
        if value is None:
            state["gone"] = True
            raise CheckFailed(f"the row of job {job_id} left #running before its progress grew past {first}")
        state["last"] = value
        return value > first
    page.wait(f"the progress of job {job_id} to grow past {first}", grew, interval=0.05)
    log(f"job {job_id}: progress grew from {first} to {state['last']}")


REPLAY_BUTTON_SCRIPT = """
const row = [...document.querySelectorAll('#dlq [data-position]')].find(r => r.getAttribute('data-position') === arguments[0]);
return row ? row.querySelector('button.replay') : null;
"""


def check_replay(page, position, expected):
    log(f"waiting for the #dlq row {position} and its replay button")
    button = page.wait(f"a #dlq row with data-position={position!r} and a button.replay",
                       lambda: page.js(REPLAY_BUTTON_SCRIPT, position))
    page.js("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    log(f"clicked replay on {position}")
    page.wait("the replay result", lambda: page.js(
        "const e = document.getElementById('replay-result'); return e && e.textContent.trim() ? e.textContent : null;"))
    result = page.js("return document.getElementById('replay-result').textContent;")
    log(f"replay result: {result}")
    if "failed" in result.lower():
        raise CheckFailed(f"the replay failed: {result}")
    page.wait_completed(expected)


def check_token_hidden(page, url):
    fragment = urllib.parse.urlsplit(url).fragment
    token = urllib.parse.parse_qs(fragment).get("token", [""])[0]
    if not token:
        return
    current = page.driver.current_url
    if token in current:
        raise CheckFailed("the token is still in the address bar")
    if token in (page.js("return document.documentElement.innerText;") or ""):
        raise CheckFailed("the token is in the page's visible text")
    log("the token left the address bar and is not in the page's text")


def main():
    arguments = parse_arguments()
    try:
        driver = start_browser(arguments)
    except Exception as error:
        print(f"browser_check: FAILED: the browser did not start: {error}", file=sys.stderr)
        return 2
    page = Page(driver, time.monotonic() + arguments.timeout)
    failure = None
    try:
        log(f"loading {urllib.parse.urlsplit(arguments.url)._replace(fragment='').geturl()}")
        driver.get(arguments.url)
        page.wait("the page to load", lambda: page.js("return document.readyState === 'complete';"))
        page.wait("#connection to say live", lambda: page.js(
            "const e = document.getElementById('connection'); return e && e.textContent.trim() === 'live';"))
        log("the live stream is open")
        check_token_hidden(page, arguments.url)
        if arguments.progress_job_id:
            check_progress(page, arguments.progress_job_id)
        page.wait_completed(arguments.expect_completed)
        if arguments.replay_position:
            check_replay(page, arguments.replay_position, arguments.replay_wait_completed)
        page.wait("#connection to still say live", lambda: page.js(
            "const e = document.getElementById('connection'); return e && e.textContent.trim() === 'live';"))
        status_line = page.js("const e = document.getElementById('status-line'); return e ? e.textContent : '';")
        if status_line:
            log(f"note: the status line says: {status_line}")
    except CheckFailed as error:
        failure = str(error)
    except Exception as error:  # WebDriver errors: still take the screenshot and read the console
        failure = f"{type(error).__name__}: {error}"
    finally:
        page.collect_console()
        try:
            driver.set_window_size(1280, 900)
            driver.execute_script("window.scrollTo(0, 0);")
            if driver.save_screenshot(arguments.screenshot):
                log(f"screenshot saved to {arguments.screenshot}")
            else:
                log(f"could not save the screenshot to {arguments.screenshot}")
        except Exception as error:
            log(f"could not save the screenshot: {error}")
        try:
            driver.quit()
        except Exception:
            pass
    errors = page.errors()
    if errors:
        lines = "\n".join(f"  {entry.get('source', '?')}: {entry.get('message')}" for entry in errors)
        failure = (failure + "\n" if failure else "") + f"{len(errors)} console error(s):\n{lines}"
    if failure:
        print(f"browser_check: FAILED: {failure}", file=sys.stderr)
        return 1
    log(f"passed ({len(page.console)} console message(s), none an error)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
