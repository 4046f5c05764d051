"""Serve a built site on 127.0.0.1 and look at each page in chromium the way a reader sees it (tests/test_browser.py).

``visit`` loads every page and returns what it found; ``problems`` turns that into one line per problem: a page that
did not load, a JavaScript exception, a same-site link, image, script or stylesheet that does not answer 200 (or an
anchor that is not on its page), an image that does not decode, and a math block MathJax did not typeset.
"""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin

from browser_cdp import BrowserError, Chromium, Traffic

# Waits for MathJax 3 (if the page loads it) to finish typesetting, then reports what the reader got.
PROBE = r"""
(async () => {
  const mj = window.MathJax;
  const typeset = !!(mj && mj.startup && mj.startup.promise);
  if (typeset) { await mj.startup.promise; }
  await document.fonts.ready;
  const math = [...document.querySelectorAll('.math')];
  const images = [...document.images].map(i => ({src: i.currentSrc || i.src, lazy: i.loading === 'lazy',
                                                   decoded: i.complete && i.naturalWidth > 0}));
  return {
    href: location.href,
    title: document.title,
    refresh: (document.querySelector('meta[http-equiv="refresh" i]') || {}).content || '',
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    resources: [...document.querySelectorAll('script[src]')].map(s => s.src).concat(
               [...document.querySelectorAll('link[href]')].filter(l => l.rel !== 'canonical').map(l => l.href)),
    images: images,
    ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat(
         [...document.querySelectorAll('a[name]')].map(a => a.name)),
    mathjax: typeset,
    math_total: math.length,
    math_unrendered: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim()),
    math_errors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') ||
                                                                       e.textContent),
    visible_text: document.body.innerText,
    all_text: document.body.textContent,
  };
})()
"""

# sphinx-thebe 0.3.1 (pulled in by Jupyter Book 1) adds its config script twice to every page; the second copy
# throws this on load and changes nothing a reader sees (the first copy defined it). Every other exception fails.
KNOWN_UPSTREAM = ("SyntaxError: Identifier 'THEBE_JS_URL' has already been declared",)


@dataclass
class Page:
    """One page as chromium saw it."""

    url: str
    traffic: Traffic
    seen: dict = field(default_factory=dict)  # what PROBE returned; empty if the page did not load
    error: str = ""


def pages_of(html_root: Path) -> list[str]:
    """Return the site-relative paths of every HTML page (not the theme's templates under _static/)."""
    return sorted(str(p.relative_to(html_root)) for p in html_root.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(html_root).parts))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # chromium drops connections it no longer needs (a cancelled font, a page left early)


@contextmanager
def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def visit(browser: Chromium, url: str) -> Page:
    """Open one page and probe it; a page that fails is returned with ``error`` set, never raised."""
    try:
        traffic = browser.open(url)
        if url in traffic.failed:
            return Page(url, traffic, error=f"did not load: {traffic.failed[url]}")
        try:
            seen = browser.evaluate(PROBE)
        except BrowserError as exc:
            # a redirect page (index.html) moved on while it was probed; chromium says so in one of two ways, the
            # second seen on a loaded machine ("Inspected target navigated or closed")
            if not any(sign in str(exc) for sign in ("destroyed", "navigated or closed")):
                raise
            browser.wait_for("Page.loadEventFired")
            seen = browser.evaluate(PROBE)
        return Page(url, traffic, seen)
    except BrowserError as exc:
        return Page(url, browser.traffic, error=str(exc))


def status_of(url: str) -> int:
    """Return the HTTP status of a GET on ``url`` (0 if nothing answered)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def problems(pages: list[Page], site: str) -> list[str]:
    """Return one line per problem a reader would meet on these pages (empty when the site is sound)."""
    found = []
    ids = {urldefrag(p.seen["href"])[0]: set(p.seen["ids"]) for p in pages if p.seen}
    targets: dict[str, str] = {}  # same-site url -> the first page that links to it
    for page in pages:
        name = page.url[len(site):]
        if page.error:
            found.append(f"{name}: {page.error}")
            continue
        seen, traffic = page.seen, page.traffic
        if traffic.responses.get(page.url, 200) != 200:
            found.append(f"{name}: answered HTTP {traffic.responses[page.url]}")
        if seen["refresh"]:  # a redirect page (the site's index.html): its target must be a page
            target = urljoin(page.url, seen["refresh"].split("url=", 1)[-1].strip())
            targets.setdefault(target, name)
        elif not seen["title"].strip():
            found.append(f"{name}: has no title")
        found += [f"{name}: JavaScript exception: {text}" for text in traffic.exceptions
                  if not text.startswith(KNOWN_UPSTREAM)]
        found += [f"{name}: {url[len(site):]} answered HTTP {code}" for url, code in traffic.responses.items()
                  if code >= 400 and url != site + "/favicon.ico"]  # asked by the browser, not by the page
        found += [f"{name}: {url[len(site):]} failed to load ({why})" for url, why in traffic.failed.items()]
        for image in seen["images"]:
            if image["src"].startswith(site) and not image["decoded"] and not image["lazy"]:
                found.append(f"{name}: image {image['src'][len(site):]} is broken (it did not decode)")
        if seen["math_total"] and not seen["mathjax"]:
            found.append(f"{name}: has {seen['math_total']} math blocks but MathJax did not start")
        for source in seen["math_unrendered"][:3]:
            found.append(f"{name}: math not rendered by MathJax: {source[:60]!r}")
        for error in seen["math_errors"][:3]:
            found.append(f"{name}: MathJax error: {error[:80]!r}")
        for url in seen["links"] + seen["resources"] + [i["src"] for i in seen["images"]]:
            if url.startswith(site + "/"):
                targets.setdefault(url, name)
    checked: dict[str, int] = {}
    for url, linked_from in sorted(targets.items()):
        address, fragment = urldefrag(url)
        if address not in checked:
            checked[address] = status_of(address)
        if checked[address] != 200:
            found.append(f"{linked_from}: link {address[len(site):]} answered HTTP {checked[address]}")
        elif fragment and address in ids and unquote(fragment) not in ids[address]:
            found.append(f"{linked_from}: link {url[len(site):]} points to an anchor that is not on that page")
    return found
