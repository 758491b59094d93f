"""The site builds in strict mode, and what it shows matches what the tests ran."""

import fnmatch
import html
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError

from book import hooks, records
from book.checks import lookup
from book.pages import DOCS, expand, pages
from book.registry import RECORDS_DIR, SNIPPETS
from book.render import Renderer


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


def _scaling_runs():
    spec = importlib.util.spec_from_file_location("plot_scaling", SNIPPETS / "ch04" / "plot_scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RUNS


def _expected_series(kind: str, rec: dict, rest: list[str]):
    """What a series drawn from a record must hold: [(x, y)] points, or a bar's value."""
    m = rec["metrics"]
    if kind == "busbw":
        table = m["busbw_gbps"][rest[0]]
        return sorted((float(size), float(v)) for size, v in table.items())
    if kind == "roofline" and rest[0] != "roof":
        return sorted((p["intensity"], p["tflops"]) for p in m["points"] if p["dtype"] == rest[0])
    if kind == "scaling":
        path, _label, what = rest
        return lookup(lookup(m, path) if path else m, what)
    if kind == "trace":
        return sorted((float(s), float(e)) for s, e in m["lanes"][rest[0]])
    if kind == "rounds":
        return sorted(enumerate(m["runs"][rest[0]]["median"]))
    if kind == "overlap":
        window = m["overlap_window_s"] * 1e3
        if rest[0] == "backward":
            return [(0.0, window)]
        # Ready after its share of the bytes, on one stream, for bytes / bus bandwidth.
        mib, out, free = m["bucket_mib"][rest[0]], [], 0.0
        for i, b in enumerate(mib):
            start = max(window * sum(mib[:i + 1]) / sum(mib), free)
            free = start + b * 2**20 / (m["busbw_gbps"] * 1e9) * 1e3
            out.append((start, free))
        return sorted(out)
    return None  # a roof line is derived from the points, not recorded


def _selected(kind: str, fresh: dict[str, dict]) -> set[str]:
    """The fresh records a figure must draw."""
    metrics = {k: r.get("metrics") or {} for k, r in fresh.items()}
    if kind == "busbw":
        return {k for k, m in metrics.items() if fnmatch.fnmatch(k, "ch02/bench.sh:collectives-*")
                and m.get("busbw_gbps")}
    if kind == "roofline":
        return {k for k, m in metrics.items() if fnmatch.fnmatch(k, "ch02/bench.sh:matmul-*") and m.get("points")}
    if kind == "trace":
        return {k for k, m in metrics.items() if k == "ch03/commands.sh:profile-2gpu" and m.get("lanes")}
    if kind == "overlap":
        return {k for k, m in metrics.items() if k == "ch03/commands.sh:ddp-math" and m.get("bucket_mib")}
    if kind == "rounds":
        return {k for k, m in metrics.items()
                if k in ("ch11/commands.sh:strategies", "ch11/commands.sh:dp") and m.get("runs")}
    return {block for _, block, path in _scaling_runs() if block in fresh
            and ((lookup(metrics[block], path) if path else metrics[block]) or {}).get("tokens_per_s_per_gpu")}


def test_figures_hold_the_recorded_points(built_site, figures, entries):
    """Each figure draws every fresh record it should, each point as recorded, and nothing stale."""
    site, _ = built_site
    fresh = records.fresh_records(entries)
    for name in figures:
        image = site / "figures" / name
        data = json.loads(image.with_suffix(".json").read_text())
        svg = image.read_text()
        drawn = set(data["records"])
        assert drawn <= set(fresh), f"{name} drew records that are not fresh: {drawn - set(fresh)}"
        assert drawn == _selected(data["figure"], fresh), f"{name} left out fresh records"
        gids = {s["gid"] for s in data["series"]}
        for s in data["series"]:
            assert f'id="{html.escape(s["gid"])}"' in svg, f"{name}: series {s['gid']} is not in the image"
            block, *rest = s["gid"].split("|")
            want = _expected_series(data["figure"], fresh[block], rest)
            got = sorted(zip(s["x"], s["y"], strict=True)) if "x" in s else s["value"]
            if want is not None:
                assert got == pytest.approx(want), f"{name}: {s['gid']} shows {got}, the record has {want}"
        for block in drawn:
            assert any(g.startswith(block + "|") for g in gids), f"{name}: nothing drawn from {block}"


FIGURE = "ch02-busbw.svg"


def test_a_stale_record_is_never_drawn_and_fails_a_publish_build(tmp_path, figures, entries, monkeypatch):
    rec_dir = tmp_path / "records"
    shutil.copytree(RECORDS_DIR, rec_dir)
    key = "ch02/bench.sh:collectives-cpu"
    rec = json.loads(records.record_path(key, rec_dir).read_text())
    assert records.judge(entries[key], rec).fresh
    rec["snippets"]["ch02/collective_bench.py"] = "0" * 64  # as if the benchmark changed since its run
    records.record_path(key, rec_dir).write_text(json.dumps(rec))
    drawn, would = hooks.draw_figures({FIGURE: figures[FIGURE]}, entries, rec_dir, tmp_path / "out")
    assert key not in drawn[FIGURE]["records"]
    assert key in would[FIGURE]
    # After a build, a publish build fails on it; an ordinary build warns.
    hooks.on_pre_build({})
    hooks._state["problems"].append(f"figure {FIGURE} would draw the stale record of {key}")
    (tmp_path / "site").mkdir()
    monkeypatch.setenv("BOOK_PUBLISH", "1")
    with pytest.raises(PluginError, match="would draw the stale record"):
        hooks.on_post_build({"site_dir": str(tmp_path / "site")})


def test_a_publish_build_fails_on_unrendered_macros_and_missing_tier_notes(tmp_path):
    site = tmp_path / "site"
    (site / "ch09").mkdir(parents=True)
    (site / "ch09" / "index.html").write_text(
        "<p>The run reached {{ metrc(\"ch09/x.sh:a\", \"gbps\") }} GB/s.</p>\n"
        "<pre><code>helm template {{ .Values.image }}</code></pre>\n"
        '<pre class="mermaid">A{{"hexagon"}}</pre>\n')
    notes = {"ch09/index.html": {"ch09/x.sh:nodes": "Not run for this book: this needs several GPU nodes."}}
    hooks._state["entries"] = {}
    problems = hooks.html_problems(site, notes)
    assert len(problems) == 2, problems
    assert problems[0].startswith("ch09/index.html:1: a literal '{{' in the HTML")
    assert "ch09/x.sh:nodes has neither a record nor the 'not verified on this tier' note" in problems[1]


def test_the_build_warns_about_every_block_without_a_fresh_record(built_site, entries):
    _, log = built_site
    stale = [k for k, _ in records.report(entries)]
    for key in stale:
        assert key in log, f"the build did not mention {key}, which has no fresh record"
    assert ("problem(s) a publish build would fail on" in log) == bool(stale)


def test_records_notebook_is_executed_with_its_plots(built_site):
    site, _ = built_site
    html = (site / "ch02-records" / "index.html").read_text()
    assert html.count("jp-RenderedSVG jp-OutputArea-output") >= 2, "the notebook's two plots did not render"
    assert "ch02/bench.sh:collectives-cpu" in html, "the notebook did not read the records"
    assert "Traceback" not in html
