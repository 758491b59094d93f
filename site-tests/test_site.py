"""The site builds in strict mode, and what it shows matches what the tests ran."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from book.pages import DOCS, expand, pages
from book.registry import REPO
from book.render import Renderer


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-4000:]}"
    return out, log


def _html_path(site: Path, page: Path) -> Path:
    rel = page.relative_to(DOCS).with_suffix("")
    if rel.name == "index":
        return site / rel.parent / "index.html"
    return site / rel / "index.html"


def test_build_has_no_warnings(built_site):
    _, log = built_site
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
    warnings = [ln for ln in plain.splitlines() if re.match(r"^(WARNING|ERROR)\s+-", ln)]
    assert not warnings, "\n".join(warnings)


def test_every_block_the_tests_saw_is_on_the_built_page(built_site, entries):
    site, _ = built_site
    renderer = Renderer(entries)
    for page in pages():
        blocks = expand(page.read_text(), page.name, renderer)
        html = _html_path(site, page).read_text()
        shown = len(re.findall(r"<pre[ >]", html))
        assert shown == len(blocks), f"{page.name}: {len(blocks)} blocks expanded, {shown} <pre> in HTML"


def test_blocks_come_with_copy_buttons_and_no_remote_fonts(built_site):
    site, _ = built_site
    html = (site / "index.html").read_text()
    assert '"content.code.copy"' in html
    assert "fonts.googleapis.com" not in html


def test_figures_are_drawn_from_records(built_site, figures):
    site, _ = built_site
    for name in figures:
        f = site / "figures" / name
        assert f.exists() and f.stat().st_size > 1000, f"figure {name} missing or empty"


def test_records_notebook_is_executed_with_its_plots(built_site):
    site, _ = built_site
    html = (site / "ch02-records" / "index.html").read_text()
    assert html.count("jp-RenderedSVG jp-OutputArea-output") >= 2, "the notebook's two plots did not render"
    assert "ch02/bench.sh:collectives-cpu" in html, "the notebook did not read the records"
    assert "Traceback" not in html
