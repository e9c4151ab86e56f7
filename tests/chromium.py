"""Headless Chromium driven through its DevTools protocol over a pipe (--remote-debugging-pipe):
no debugging port, no WebDriver, nothing beyond the standard library. Debian: apt-get install chromium."""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]


def find():
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def _above_4(fd):
    """fd moved above 4, so that making fds 3 and 4 in the child cannot overwrite it first."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return moved


class Chromium:
    """One browser with one page; messages are JSON ended by a NUL byte, on the browser's fds 3 (in) and 4 (out)."""

    def __init__(self, binary, user_data_dir, width=1000, height=700):
        browser_in, self._to_browser = os.pipe()
        self._from_browser, browser_out = os.pipe()
        browser_in, browser_out = (_above_4(fd) for fd in (browser_in, browser_out))
        # bash moves the browser's pipe ends to its fds 3 and 4, then becomes the browser (sh may be dash,
        # which takes single-digit fds only)
        shell = f'exec "$0" "$@" 3<&{browser_in} 4>&{browser_out} {browser_in}<&- {browser_out}>&-'
        self.process = subprocess.Popen(
            ["bash", "-c", shell, binary, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            pass_fds=(browser_in, browser_out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(browser_in)
        os.close(browser_out)
        self._buffer, self._id, self.events = b"", 0, []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.page("Page.enable")

    def send(self, method, session=None, timeout=60, **params):
        """A browser-level command (or a page's, with its session); returns its result."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params} | ({"sessionId": session} if session else {})
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, method)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def page(self, method, **params):
        return self.send(method, self._session, **params)

    def _read(self, deadline, method):
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._from_browser, 1 << 20) if ready else None
            if not chunk:
                raise TimeoutError(f"Chromium did not answer {method}" + ("" if ready else " in time"))
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.page("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=60):
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression}")
            time.sleep(0.05)
        return value

    def click(self, selector, fraction=0.5):
        """A real mouse click on an element, `fraction` of the way across it, scrolled into
        view first as a user would (a model with many dials pushes the buttons below the fold)."""
        x, y = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "nearest"}}); const r = e.getBoundingClientRect();
            return [r.left + {fraction} * r.width, r.top + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path):
        path.write_bytes(base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"]))

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
