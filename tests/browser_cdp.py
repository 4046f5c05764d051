"""A small Chrome DevTools Protocol client for the browser test: Debian's headless chromium, one tab, offline.

Only what tests/test_browser.py needs: start chromium with a fresh profile, drive one page over a websocket
(``websocket-client``), answer every network request itself (the site's own requests go through, MathJax's CDN is
served from the ``django-static-mathjax`` package, anything else on the internet is refused at once), and record
what a page did (responses, failed loads, JavaScript exceptions).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import websocket

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900", "--remote-debugging-port=0"]
# What the book's pages load MathJax 3 from (Sphinx's default mathjax_path); served from a local copy.
MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/"


class BrowserError(Exception):
    """Chromium could not be started or stopped answering: one line that says what to do."""


def mathjax_root() -> Path:
    """Return the folder of a local MathJax 3 distribution (the ``es5/`` folder's parent)."""
    try:
        import mathjax  # the django-static-mathjax package: MathJax 3 as static files
    except ImportError:
        raise BrowserError("MathJax 3 is not installed: `pip install -r requirements.txt` (django-static-mathjax)")
    root = Path(mathjax.__file__).parent / "static" / "mathjax"
    if not (root / "es5" / "tex-mml-chtml.js").exists():
        raise BrowserError(f"{root} has no es5/tex-mml-chtml.js: reinstall django-static-mathjax")
    return root


@dataclass
class Traffic:
    """What one page load asked for and got."""

    responses: dict[str, int] = field(default_factory=dict)  # url -> HTTP status, same-site requests only
    failed: dict[str, str] = field(default_factory=dict)  # url -> network error, same-site requests only
    refused: set[str] = field(default_factory=set)  # internet addresses the page tried (refused: no network)
    exceptions: list[str] = field(default_factory=list)  # uncaught JavaScript exceptions


class Chromium:
    """Headless chromium with a fresh profile and one tab driven over the DevTools protocol."""

    def __init__(self, site: str, binary: Path = CHROMIUM, timeout: float = 30.0):
        if not binary.exists():
            raise BrowserError(f"{binary} is missing: run `make browser-deps` (installs Debian's chromium) "
                               "or set CHROMIUM to a chromium binary")
        self.site = site.rstrip("/")
        self.timeout = timeout
        self.mathjax = mathjax_root()
        self.profile = Path(tempfile.mkdtemp(prefix="cnnbook-chromium-"))
        self.log = open(self.profile.parent / (self.profile.name + ".log"), "w+")
        self.proc = subprocess.Popen([str(binary), *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self._id = 0
        self._events: list[dict] = []
        self._urls: dict[str, str] = {}  # request id -> url, for failed loads
        self.traffic = Traffic()
        try:
            self.ws = websocket.create_connection(self._page_socket(), timeout=timeout, suppress_origin=True)
            for domain in ("Page", "Runtime", "Network"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            self.call("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]})
        except Exception:
            self.close()
            raise

    def _page_socket(self) -> str:
        """Wait for chromium to write its DevTools port, then return the websocket address of its tab."""
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                tail = " | ".join(self.log.read().strip().splitlines()[-3:])
                raise BrowserError(f"chromium did not start (exit {self.proc.poll()}): {tail}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
                pages = [t for t in json.load(reply) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise BrowserError("chromium started but opened no tab")

    # -- protocol ------------------------------------------------------------------------------------------
    def _post(self, method: str, **params) -> int:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        return self._id

    def _receive(self, deadline: float) -> dict:
        self.ws.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            message = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            raise BrowserError(f"chromium did not answer within {self.timeout:.0f} s") from None
        if message.get("method") == "Fetch.requestPaused":
            self._route(message["params"])  # answered at once, or the page would wait for us forever
        elif "method" in message:
            self._record(message)
            self._events.append(message)
        return message

    def call(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        """Send one command and return its result; raise BrowserError on a protocol error or a timeout."""
        wanted = self._post(method, **(params or {}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error'].get('message')}")
                return message.get("result", {})

    def wait_for(self, event: str, timeout: float | None = None) -> dict:
        """Return the next event called ``event`` (earlier ones that were buffered count)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, message in enumerate(self._events):
                if message["method"] == event:
                    return self._events.pop(i)["params"]
            if time.monotonic() > deadline:
                raise BrowserError(f"no {event} within {timeout or self.timeout:.0f} s")
            self._receive(deadline)

    # -- network -------------------------------------------------------------------------------------------
    def _route(self, paused: dict) -> None:
        url, rid = paused["request"]["url"], paused["requestId"]
        if url.startswith(self.site + "/") or url == self.site or url.startswith(("data:", "blob:", "about:")):
            self._post("Fetch.continueRequest", requestId=rid)
        elif url.startswith(MATHJAX_CDN):
            local = self.mathjax / urlsplit(url).path[len(urlsplit(MATHJAX_CDN).path):]
            if local.is_file():
                kind = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
                self._post("Fetch.fulfillRequest", requestId=rid, responseCode=200,
                           responseHeaders=[{"name": "Content-Type", "value": kind},
                                            {"name": "Access-Control-Allow-Origin", "value": "*"}],
                           body=base64.b64encode(local.read_bytes()).decode())
            else:
                self._post("Fetch.fulfillRequest", requestId=rid, responseCode=404, body="")
        else:
            self.traffic.refused.add(url)
            self._post("Fetch.failRequest", requestId=rid, errorReason="BlockedByClient")

    def _record(self, message: dict) -> None:
        method, params = message["method"], message.get("params", {})
        if method == "Network.requestWillBeSent":
            self._urls[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived":
            url = params["response"]["url"]
            if url.startswith(self.site):
                self.traffic.responses[url] = params["response"]["status"]
        elif method == "Network.loadingFailed":
            url = self._urls.get(params["requestId"], "")
            if url.startswith(self.site) and not params.get("canceled"):
                self.traffic.failed[url] = params.get("errorText", "?")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "?")
            self.traffic.exceptions.append(text.splitlines()[0])

    # -- pages ---------------------------------------------------------------------------------------------
    def open(self, url: str, timeout: float | None = None) -> Traffic:
        """Load ``url`` and wait for its load event; return what it requested (errors are recorded, not raised)."""
        self.traffic, self._urls, self._events = Traffic(), {}, []
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            self.traffic.failed[url] = result["errorText"]
            return self.traffic
        self.wait_for("Page.loadEventFired", timeout)
        return self.traffic

    def evaluate(self, expression: str, timeout: float | None = None):
        """Evaluate JavaScript in the page (awaiting a promise) and return its value as JSON data."""
        wait = timeout or self.timeout
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True, "timeout": int(1000 * wait)}, wait + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"script failed: {details.get('exception', {}).get('description', details)}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """Save what the tab shows (1280 x 900) as a PNG."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop chromium and delete its profile."""
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.log.close()
            os.unlink(self.log.name)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
