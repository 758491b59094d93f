"""MkDocs hook: numbers and figures from verification records, and the publish check.

- on_page_markdown renders {{ metric(...) }}, {{ spread(...) }}, {{ env(...) }},
  {{ verified(...) }}, {{ output(...) }} and {{ ratio(...) }} from fresh records, and
  notes under each GPU, multi-node and cluster block where it last passed;
- on_files draws the figures listed under `figures:` in site-tests/blocks/*.yml. Their
  commands get `{records}`, a scratch folder holding only the fresh, passing records,
  so a stale record is never drawn; each figure also writes the data it drew beside the
  image (NAME.json), and both go into the site under figures/;
- on_post_build says what the pages quote without a fresh record.

`make build` and `make serve` print those problems as warnings. A publish build
(BOOK_PUBLISH=1, as `make publish-check` runs it) fails on any of them: a block of the
cpu or gpu:N tiers without a fresh record, a figure that would draw a stale record, a
literal `{{` left in the HTML, or a multi-node or cluster block with neither a record
nor the "not verified on this tier" note under it.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File  # noqa: E402

from book import records, registry  # noqa: E402
from book.registry import RECORDS_DIR, REPO  # noqa: E402
from book.render import Renderer, RenderError  # noqa: E402

_state: dict = {}


def publishing() -> bool:
    return os.environ.get("BOOK_PUBLISH", "") not in ("", "0")


def _problem(text: str) -> None:
    _state["problems"].append(text)


def on_pre_build(config):
    # Every build starts afresh (`mkdocs serve` builds again on each change).
    try:
        entries, figures = registry.load()
    except registry.RegistryError as exc:
        raise PluginError(str(exc)) from None
    _state.update(entries=entries, figures=figures, renderer=Renderer(entries), problems=[], notes={})


def on_page_markdown(markdown, page, config, files):
    renderer = _state["renderer"]
    before = set(renderer.notes)
    try:
        out = renderer.page(markdown)
    except RenderError as exc:
        raise PluginError(f"{page.file.src_uri}: {exc}") from None
    _state["notes"][page.file.dest_path] = {k: renderer.notes[k] for k in set(renderer.notes) - before}
    return out


def data_path(image: Path) -> Path:
    """Where a figure script writes the data it drew: beside the image, as NAME.json."""
    return image.with_suffix(".json")


def draw_figure(cmd: list[str], out: Path, records_dir: Path) -> dict:
    """Run a figure's command with a records folder; the data the figure drew."""
    argv = [sys.executable if c == "python" else c.format(out=out, records=records_dir) for c in cmd]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not out.exists():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PluginError(f"figure {out.name}: {' '.join(cmd)} failed: {last[0]}")
    try:
        return json.loads(data_path(out).read_text())
    except (OSError, ValueError):
        raise PluginError(f"figure {out.name}: the script wrote no data file {data_path(out).name}") from None


def draw_figures(figures: dict[str, list[str]], entries, records_dir: Path, out_dir: Path):
    """Draw every figure from the fresh records only.

    Returns {name: data} and, for each figure, the stale records it would have drawn:
    where stale records exist, each figure is also run on them alone, into a scratch
    file that is thrown away, to learn whether it would draw any.
    """
    fresh_dir, stale_dir = out_dir / "fresh-records", out_dir / "stale-records"
    records.export_fresh(fresh_dir, entries, records_dir)
    stale_dir.mkdir(parents=True, exist_ok=True)
    stale = []
    for key, e in sorted(entries.items()):
        rec = records.load(key, records_dir) if e.runnable else None
        if rec and rec.get("status") == "pass" and not records.judge(e, rec).fresh:
            (stale_dir / records.record_path(key).name).write_text(json.dumps(rec))
            stale.append(key)
    drawn, would = {}, {}
    for name, cmd in sorted(figures.items()):
        drawn[name] = draw_figure(cmd, out_dir / name, fresh_dir)
        would[name] = []
        if stale:
            probe = out_dir / "probe" / name
            probe.parent.mkdir(exist_ok=True)
            would[name] = sorted(draw_figure(cmd, probe, stale_dir).get("records", []))
    return drawn, would


def on_files(files, config):
    with tempfile.TemporaryDirectory(prefix="book-figures-") as tmp:
        out_dir = Path(tmp)
        drawn, would = draw_figures(_state.get("figures", {}), _state["entries"], RECORDS_DIR, out_dir)
        for name in drawn:
            image = out_dir / name
            files.append(File.generated(config, f"figures/{name}", content=image.read_bytes()))
            files.append(File.generated(config, f"figures/{data_path(image).name}",
                                        content=data_path(image).read_bytes()))
            for key in would[name]:
                _problem(f"figure {name} would draw the stale record of {key}; it is drawn without it")
    return files


_MERMAID_SCRIPT = re.compile(r'<script src="[^"]*assets/javascripts/mermaid\.min\.js"></script>\s*')


def on_post_page(output, page, config):
    # The site's own Mermaid (3.5 MB) is loaded only by pages that have a diagram.
    if 'class="mermaid"' not in output:
        output = _MERMAID_SCRIPT.sub("", output)
    return output


# Text a page must not show: a macro that was not rendered.
_UNRENDERED = re.compile(r"\{\{|\}\}")
# Scripts, styles, code and diagrams may hold `{{` of their own (a Helm template, a
# Mermaid hexagon); the check reads the rest.
_NOT_PROSE = re.compile(r"<(script|style|pre|code)\b.*?</\1>", re.S | re.I)


def html_problems(site_dir: Path, notes: dict[str, dict[str, str]]) -> list[str]:
    """Literal `{{` in the built pages, and notes the renderer added that are not on the page."""
    problems = []
    for page in sorted(site_dir.rglob("*.html")):
        text = _NOT_PROSE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text(errors="replace"))
        for n, line in enumerate(text.splitlines(), 1):
            if "{{" in line:
                problems.append(f"{page.relative_to(site_dir)}:{n}: a literal '{{{{' in the HTML: "
                                f"{html.unescape(line.strip())[:100]!r}")
    for dest, page_notes in notes.items():
        built = site_dir / dest
        text = html.unescape(re.sub(r"<[^>]+>", "", built.read_text())) if built.exists() else ""
        for key, note in page_notes.items():
            plain = re.sub(r"`", "", note)
            if plain not in text:
                problems.append(f"{dest}: {key} has neither a record "
                                "nor the 'not verified on this tier' note under it")
    return problems


def on_post_build(config):
    entries, renderer = _state["entries"], _state["renderer"]
    for key in sorted(renderer.missing):
        _problem(f"a page quotes {key}, which has no fresh record")
    for key, verdict in records.report(entries):
        if key not in renderer.missing:
            _problem(f"{key} ({entries[key].tier}) has no fresh record: {verdict.status}")
    for p in html_problems(Path(config["site_dir"]), _state["notes"]):
        _problem(p)
    problems = _state["problems"]
    if not problems:
        return
    if publishing():
        raise PluginError("publish check failed:\n  " + "\n  ".join(problems))
    print(f"warning: {len(problems)} problem(s) a publish build would fail on "
          "(`python site-tests/records.py report -v` says why):", file=sys.stderr)
    for p in problems:
        print(f"  {p}", file=sys.stderr)
