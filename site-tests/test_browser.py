"""The reader's browser: the built site, served on 127.0.0.1 and driven by Chromium.

Debian's Chromium (`/usr/bin/chromium`, which `make test` installs if absent) runs
headless under Playwright with an empty profile and no network but the local server.
Screenshots go to runs/screenshots/.
"""

from __future__ import annotations

import functools
import html
import http.server
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

from book import shell_lines
from book.registry import REPO, SHELL_LANGS, parse_ref, section_text

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "runs" / "screenshots"
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
CODE_BLOCKS = ", ".join(f"div.language-{lang}" for lang in sorted(SHELL_LANGS))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url(built_site):
    """The built site on 127.0.0.1, on a free port (never 8000), stopped whatever happens."""
    site, _ = built_site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    assert server.server_address[1] != 8000
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with an empty profile, allowed to read the clipboard."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test dependencies")
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it with apt-get"
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS, viewport=DESKTOP,
            permissions=["clipboard-read", "clipboard-write"], service_workers="block",
        )
        # Nothing leaves the machine: any request not to the local server fails the page.
        context.route(re.compile(r"^(?!http://127\.0\.0\.1:)"), lambda route: route.abort())
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def _html_pages(site: Path) -> list[str]:
    """Every page of the site as a path under its root ("", "ch03/", ...)."""
    pages = []
    for f in sorted(site.rglob("index.html")):
        rel = f.parent.relative_to(site)
        pages.append("" if str(rel) == "." else f"{rel.as_posix()}/")
    return pages


def _open(browser, url: str, errors: list[str] | None = None):
    page = browser.new_page()
    if errors is not None:
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page


def _ids(site: Path, rel: str) -> set[str]:
    text = (site / rel).read_text(errors="replace")
    return set(re.findall(r'\s(?:id|name)="([^"]+)"', text))


@dataclass
class Visit:
    """One page as the browser loaded it, and what trying its copy buttons gave."""
    errors: list[str] = field(default_factory=list)
    hrefs: list[str] = field(default_factory=list)
    copy_problems: list[str] = field(default_factory=list)
    copied: int = 0


@pytest.fixture(scope="module")
def visits(browser, site_url, built_site, inventory, entries) -> dict[str, Visit]:
    """Every page loaded once, in one tab: its console errors, failed requests and links,
    then its copy buttons clicked one by one."""
    site, _ = built_site
    out: dict[str, Visit] = {}
    page = browser.new_page()
    current: list[Visit] = [Visit()]
    page.on("console", lambda m: current[0].errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: current[0].errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: current[0].errors.append(f"request failed: {r.url}"))
    try:
        for rel in _html_pages(site):
            current[0] = out[rel] = Visit()
            page.goto(site_url + rel, wait_until="load")
            page.wait_for_load_state("networkidle")
            out[rel].hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            _try_copy_buttons(page, rel, out[rel], inventory, entries)
    finally:
        page.close()
    return out


def test_every_page_loads_cleanly_with_no_broken_internal_link(visits, site_url, built_site):
    site, _ = built_site
    problems, ids = [], {}
    for rel, visit in visits.items():
        problems += [f"/{rel}: {e}" for e in visit.errors]
        for href in visit.hrefs:
            url = urlparse(href)
            if not href.startswith(site_url):
                continue
            path = url.path.lstrip("/")
            target = path + "index.html" if path.endswith("/") or not path else path
            if not (site / target).is_file():
                problems.append(f"/{rel}: link to {href}: no such page")
            elif url.fragment and target.endswith(".html"):
                if url.fragment not in ids.setdefault(target, _ids(site, target)):
                    problems.append(f"/{rel}: link to {href}: no anchor #{url.fragment}")
    assert len(visits) > 5, f"only {len(visits)} pages found"
    assert not problems, "\n".join(problems)


def test_search_finds_every_chapter(browser, site_url, built_site):
    site, _ = built_site
    chapters = [r for r in _html_pages(site) if re.fullmatch(r"ch\d\d/", r)]
    assert chapters
    page = _open(browser, site_url)
    missing = []
    for rel in chapters:
        title = re.search(r"<h1[^>]*>(.*?)</h1>", (site / rel / "index.html").read_text(), re.S).group(1)
        query = html.unescape(re.sub(r"<[^>]+>|&para;|^\s*\d+\.\s*", "", title)).strip()
        page.click("input.md-search__input")
        # Material searches on key presses: fill all but the last character, then type it.
        page.fill("input.md-search__input", query[:-1])
        page.keyboard.type(query[-1])
        # The previous query's results stay on screen until the new ones replace them,
        # so wait for a result that links to this chapter rather than for any result.
        found = f"els => els.some(e => e.href.includes('/{rel}'))"
        try:
            page.wait_for_function(
                f"() => ({found})([...document.querySelectorAll('.md-search-result__item a')])",
                timeout=10000)
        except Exception as e:  # playwright's TimeoutError; the module is imported lazily
            if type(e).__name__ != "TimeoutError":
                raise
            links = page.eval_on_selector_all(".md-search-result__item a", "els => els.map(e => e.href)")
            missing.append(f"{query!r} found {links[:3]}, not /{rel}")
    page.close()
    assert not missing, "\n".join(missing)


def _contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of a CSS colour (alpha blended over the background) and its background."""
    def rgba(css: str) -> list[float]:
        v = [float(x) for x in re.findall(r"[\d.]+", css)]
        return v[:3] + [v[3] if len(v) > 3 else 1.0]

    def lum(rgb) -> float:
        chan = [c / 255 for c in rgb]
        chan = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in chan]
        return 0.2126 * chan[0] + 0.7152 * chan[1] + 0.0722 * chan[2]

    f, b = rgba(fg), rgba(bg)
    blended = [f[3] * f[i] + (1 - f[3]) * b[i] for i in range(3)]
    hi, lo = sorted((lum(blended), lum(b[:3])), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


COLORS_JS = """
blocks => blocks.slice(0, 6).map(div => {
  const code = div.querySelector('pre > code');
  let bgEl = code, bg = 'rgba(0, 0, 0, 0)';
  while (bgEl && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
    bg = getComputedStyle(bgEl).backgroundColor; bgEl = bgEl.parentElement;
  }
  const colors = new Set([getComputedStyle(code).color]);
  code.querySelectorAll('span[class]').forEach(s => {
    if (s.textContent.trim()) colors.add(getComputedStyle(s).color);
  });
  return {bg, colors: [...colors]};
})
"""


@pytest.mark.parametrize("scheme", ["default", "slate"])
def test_code_is_legible_in_light_and_dark_mode(browser, site_url, scheme):
    page = _open(browser, site_url + "ch03/")
    if scheme == "slate":
        page.click("form[data-md-component=palette] label:visible")
        page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'slate'")
    assert page.get_attribute("body", "data-md-color-scheme") == scheme
    low = []
    for block in page.eval_on_selector_all(f"{CODE_BLOCKS}, div.language-python", COLORS_JS):
        for color in block["colors"]:
            ratio = _contrast(color, block["bg"])
            if ratio < 4.5:
                low.append(f"{color} on {block['bg']}: {ratio:.1f}")
    page.close()
    assert not low, f"code colours below a contrast of 4.5 in the {scheme} scheme: {sorted(set(low))}"


def _authored_shell_blocks(inventory, page_name: str):
    return [b for b in inventory.blocks if b.page == page_name and b.lang in SHELL_LANGS and not b.generated]


SHOW_JS = """
el => {
  // Open every collapsed box that holds the block, as a reader clicking its title would.
  for (let d = el.closest('details'); d; d = d.parentElement.closest('details')) d.open = true;
  // Open every content tab that holds the block, as a reader clicking its label would.
  const tabs = [];
  for (let b = el.closest('.tabbed-block'); b; b = b.parentElement.closest('.tabbed-block')) tabs.unshift(b);
  for (const b of tabs) {
    const set = b.closest('.tabbed-set');
    const i = [...b.parentElement.children].indexOf(b);
    set.querySelectorAll(':scope > .tabbed-labels > label')[i].click();
  }
}
"""


def _try_copy_buttons(page, rel: str, visit: Visit, inventory, entries) -> None:
    """Click each shell block's copy button as a reader would; note what is wrong."""
    page_name = "index.md" if rel == "" else rel.rstrip("/") + ".md"
    blocks = _authored_shell_blocks(inventory, page_name)
    if not blocks:
        return
    divs = [d for d in page.query_selector_all(CODE_BLOCKS)
            if "recorded-output" not in (d.get_attribute("class") or "")]
    if len(divs) != len(blocks):
        visit.copy_problems.append(
            f"{page_name}: {len(divs)} shell blocks in the browser, {len(blocks)} on the page")
        return
    for div, block in zip(divs, blocks, strict=True):
        e = entries.get(block.ref)
        button = div.query_selector("button.md-code__button[data-md-type=copy], button.md-clipboard")
        if e is not None and e.listing and ":" not in block.ref:
            if button is not None:
                visit.copy_problems.append(f"{block.where}: the script {block.ref} has a copy button")
            continue
        if button is None:
            visit.copy_problems.append(f"{block.where}: {block.ref} has no copy button")
            continue
        div.evaluate(SHOW_JS)
        page.evaluate("navigator.clipboard.writeText('')")
        div.hover()
        button.click()
        page.wait_for_function("navigator.clipboard.readText().then(t => t.length > 0)", timeout=5000)
        copied = page.evaluate("navigator.clipboard.readText()")
        want = section_text(*parse_ref(block.ref)).strip("\n")
        if copied.rstrip("\n") != want or copied.count("\n") > want.count("\n") + 1:
            visit.copy_problems.append(f"{block.where}: copying {block.ref} gave {copied!r}, not {want!r}")
        visit.copied += 1


def test_copy_buttons_copy_exactly_the_commands(visits):
    """A command block's copy button puts its commands on the clipboard, one per line, nothing else;
    a whole script shown as a listing has no copy button."""
    assert sum(v.copied for v in visits.values()), "no copy button was tried"
    problems = [p for v in visits.values() for p in v.copy_problems]
    assert not problems, "\n".join(problems)


_LANGS = "|".join(sorted(SHELL_LANGS))
_SHELL_DIV = re.compile(
    r'<div class="language-(?:' + _LANGS + r')(?P<classes>[^"]*)"><pre>.*?<code>(?P<code>.*?)</code></pre>', re.S)


def shell_texts(html_text: str) -> list[str]:
    """The text of each shell block of a built page, in page order, as the page shows it."""
    return [html.unescape(re.sub(r"<[^>]+>", "", m["code"])) for m in _SHELL_DIV.finditer(html_text)
            if "recorded-output" not in m["classes"]]


def test_every_shell_line_of_the_built_pages_runs_in_page_order(built_site, entries):
    """The commands as the built HTML shows them: each page's cpu lines ran (here, or by the
    block runner when the text is exactly what it ran) and passed; the rest are registered
    as GPU, multi-node, cluster, external or expected to fail."""
    site, _ = built_site
    by_text = shell_lines._by_text(entries)
    failures, summary = [], []
    for rel in _html_pages(site):
        texts = shell_texts((site / rel / "index.html").read_text())
        if not texts:
            continue
        plan = shell_lines.plan_page(rel or "index", texts, entries, by_text=by_text)
        counts = {a: sum(b.action == a for b in plan.blocks) for a in ("ran", "skip", "run")}
        summary.append(f"/{rel}: {counts}")
        if plan.must_run:
            failures += shell_lines.run_page(plan, entries)
    print("\n".join(summary))
    assert summary, "no shell block found in the built pages"
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screenshots_of_the_landing_page_and_a_chapter(browser, site_url, size):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewport = DESKTOP if size == "desktop" else PHONE
    shots = [("index", "", None, "default"), ("ch03", "ch03/", "one-process", "default")]
    if size == "desktop":
        shots.append(("ch03-dark", "ch03/", "one-process", "slate"))
    for name, rel, anchor, scheme in shots:
        page = browser.new_page()
        page.set_viewport_size(viewport)
        page.goto(site_url, wait_until="load")
        page.evaluate("localStorage.clear()")  # the light scheme, whatever an earlier test chose
        page.goto(site_url + rel + (f"#{anchor}" if anchor else ""), wait_until="networkidle")
        if scheme == "slate":
            page.click("form[data-md-component=palette] label:visible")
            page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'slate'")
        assert page.get_attribute("body", "data-md-color-scheme") == scheme
        out = SCREENSHOTS / f"{name}-{size}.png"
        page.screenshot(path=str(out))
        page.close()
        assert out.stat().st_size > 10_000, f"{out} is nearly empty"
