"""A minimal headless Chromium driver over the DevTools protocol (websockets), for click-through tests."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium")


class Browser:
    """One Chromium process; :meth:`page` opens a tab with its own cookies (a browser context)."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        # Chromium's helper processes may still write the profile for a moment after the browser exits
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self._process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--remote-debugging-port=0",
             f"--user-data-dir={self._profile.name}", "--no-first-run", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        assert self._process.stderr is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = self._process.stderr.readline()
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            url = match.group(1) if match else None
        if url is None:
            self.close()
            raise RuntimeError("chromium did not start")
        self._ws = connect(url, max_size=64 * 1024 * 1024, open_timeout=30)
        self._ids = itertools.count(1)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def page(self, width: int, height: int, *, mobile: bool) -> Page:
        context = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        return page

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001
            pass
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._profile.cleanup()


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _settle(self, before: str | None) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                if self.js("document.readyState") == "complete" and (before is None or self.js("performance.timeOrigin + ''") != before):
                    return
            except RuntimeError:
                continue
        raise TimeoutError("the page did not load")

    def goto(self, url: str) -> None:
        before = self.js("performance.timeOrigin + ''")
        self.call("Page.navigate", {"url": url})
        self._settle(before)

    def fill(self, selector: str, value: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def type(self, selector: str, text: str) -> None:
        """Focus and type, the way a barcode scanner does (keyboard text input, then Enter is not needed)."""
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        before = self.js("performance.timeOrigin + ''")
        self.js(f"document.querySelector({json.dumps(selector)}).click()")
        self._settle(before)

    def text(self, selector: str = "body") -> str:
        return str(self.js(f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText"))

    @property
    def path(self) -> str:
        return str(self.js("location.pathname + location.search"))

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))
