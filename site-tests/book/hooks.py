"""MkDocs hook: numbers and figures from verification records.

- on_page_markdown renders {{ metric(...) }}, {{ env(...) }}, {{ verified(...) }} and
  {{ output(...) }} from records and notes under each GPU block where it last passed;
- on_files draws the figures listed under `figures:` in site-tests/blocks/*.yml by
  running their commands against site-tests/records/, and adds them as figures/NAME.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File  # noqa: E402

from book import registry  # noqa: E402
from book.registry import RECORDS_DIR, REPO  # noqa: E402
from book.render import Renderer, RenderError  # noqa: E402

log = logging.getLogger("mkdocs.book")
_state: dict = {}


def on_config(config):
    try:
        entries, figures = registry.load()
    except registry.RegistryError as exc:
        raise PluginError(str(exc)) from None
    _state["renderer"] = Renderer(entries)
    _state["figures"] = figures
    return config


def on_page_markdown(markdown, page, config, files):
    try:
        return _state["renderer"].page(markdown)
    except RenderError as exc:
        raise PluginError(f"{page.file.src_uri}: {exc}") from None


def draw_figure(cmd: list[str], out: Path) -> None:
    argv = [sys.executable if c == "python" else c.format(out=out, records=RECORDS_DIR) for c in cmd]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not out.exists():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PluginError(f"figure {out.name}: {' '.join(cmd)} failed: {last[0]}")


def on_files(files, config):
    tmp = Path(tempfile.mkdtemp(prefix="book-figures-"))
    for name, cmd in sorted(_state.get("figures", {}).items()):
        out = tmp / name
        draw_figure(cmd, out)
        files.append(File.generated(config, f"figures/{name}", content=out.read_bytes()))
    return files


def on_post_build(config):
    missing = sorted(_state["renderer"].missing)
    if missing:
        log.info("pages quote %d block(s) with no fresh record: %s", len(missing), ", ".join(missing))
