"""The render macros: spread over repeated runs, unknown macros, notes under blocks, and
what of a recorded output a page shows."""

import dataclasses
import json
import shutil

import pytest

from book import checks, display, records
from book.render import MISSING, Renderer, RenderError

FRESH = "ch04/commands.sh:fsdp-1gpu"


def _renderer_with_runs(entries, tmp_path, values):
    """A renderer over a copy of a fresh record turned into a repeated block's record."""
    entry = dataclasses.replace(entries[FRESH], repeat=len(values))
    rec = json.loads(records.record_path(FRESH).read_text())
    rec["runs"] = [{"exit": 0, "wall_s": 100.0, "metrics": {**rec["metrics"], "tokens_per_s": v}} for v in values]
    rec["metrics"] = checks.median_metrics([r["metrics"] for r in rec["runs"]])
    rec["checked"] = checks.digest(entry, records.claims_for(entry))
    records.record_path(FRESH, tmp_path).write_text(json.dumps(rec))
    return Renderer({**entries, FRESH: entry}, records_dir=tmp_path)


def test_spread_renders_min_to_max_over_the_runs(entries, tmp_path):
    r = _renderer_with_runs(entries, tmp_path, [8120.4, 8390.0, 8011.9])
    assert r.page(f'{{{{ spread("{FRESH}", "tokens_per_s", ",.0f") }}}}') == "8,012\u20138,390"
    assert r.page(f'{{{{ metric("{FRESH}", "tokens_per_s", ",.0f") }}}}') == "8,120"  # the median


def test_spread_of_a_single_run_is_its_value(entries, tmp_path):
    shutil.copy(records.record_path(FRESH), records.record_path(FRESH, tmp_path))
    r = Renderer(entries, records_dir=tmp_path)
    value = records.load(FRESH, tmp_path)["metrics"]["mfu"]
    assert r.page(f'{{{{ spread("{FRESH}", "mfu", ".3f") }}}}') == f"{value:.3f}"


def test_spread_of_a_stale_record_is_not_measured(entries, tmp_path):
    assert Renderer(entries, records_dir=tmp_path).spread(FRESH, "mfu") == MISSING


def test_a_median_and_range_not_yet_measured_reads_as_one_gap(entries, tmp_path):
    cell = (f'{{{{ metric("{FRESH}", "mfu") }}}} ({{{{ metric("{FRESH}", "mfu") }}}}\u2013'
            f'{{{{ metric("{FRESH}", "mfu") }}}}) and {{{{ metric("{FRESH}", "mfu") }}}} '
            f'({{{{ spread("{FRESH}", "mfu") }}}})')
    assert Renderer(entries, records_dir=tmp_path).page(cell) == f"{MISSING} and {MISSING}"


@pytest.mark.parametrize("text", [f'{{{{ metrc("{FRESH}", "mfu") }}}}', f'{{{{ output("{FRESH}", 1, 2) }}}}'])
def test_a_misspelt_or_malformed_macro_fails_the_build(entries, text):
    with pytest.raises(RenderError):
        Renderer(entries).page(text)


def test_multi_node_blocks_say_they_are_not_verified_on_their_tier(entries, tmp_path):
    key = next(k for k, e in entries.items() if e.tier == "multi-node")
    r = Renderer(entries, records_dir=tmp_path)
    out = r.page(f'``` {{ .bash }}\n--8<-- "{key}"\n```\n')
    assert "Not run for this book: this needs several GPU nodes." in out
    assert key in r.notes and key not in r.missing


def test_gpu_blocks_show_the_nccl_settings_of_their_run(entries, tmp_path):
    rec = json.loads(records.record_path(FRESH).read_text())
    rec["env"]["overrides"] = {"NCCL_NVLS_ENABLE": "0", "NCCL_ALGO": "Ring", "PYTHONHASHSEED": "0",
                               "NCCL_VERSION": "2.28.3-1"}
    records.record_path(FRESH, tmp_path).write_text(json.dumps(rec))
    out = Renderer(entries, records_dir=tmp_path).page(f'``` {{ .bash }}\n--8<-- "{FRESH}"\n```\n')
    assert "with NVLink multicast off, `NCCL_ALGO=Ring`." in out
    assert "PYTHONHASHSEED" not in out and "NCCL_VERSION" not in out


GLOG = "W1129 21:30:53.266000 8930 torch/distributed/run.py:874] "
TORCHRUN_FAILURE = f"""\
{GLOG}
{GLOG}*****************************************
{GLOG}Setting OMP_NUM_THREADS environment variable for each process to be 1 in default, to avoid ...
{GLOG}*****************************************
/x/y.py:12: UserWarning: something is deprecated
  warnings.warn(
/x/y.py:12: UserWarning: something is deprecated
  warnings.warn(
error: --steps must be positive
[rank0]: Traceback (most recent call last):
[rank0]:   File "/tmp/snippets/ch03/hang_demo.py", line 90, in <module>
[rank0]:     main()
[rank0]: RuntimeError: Timed out waiting 10000ms
[rank0]:[W1129 21:31:06.000 ProcessGroupNCCL.cpp:1538] Warning: WARNING: destroy_process_group() was not called \
before program exit, which can leak resources.
E1129 21:31:06.308000 8930 elastic/multiprocessing/api.py:1002] failed (exitcode: 1) local_rank: 0
Traceback (most recent call last):
  File "/venv/bin/torchrun", line 6, in <module>
    sys.exit(main())
torch.distributed.elastic.multiprocessing.errors.ChildFailedError: 
============================================================
snippets/ch03/hang_demo.py FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
============================================================
{{"ok": 0}}"""


def test_recorded_output_is_shown_without_boilerplate():
    shown = display.for_page(TORCHRUN_FAILURE)
    assert shown == [
        "/x/y.py:12: UserWarning: something is deprecated",
        "  warnings.warn(",
        "error: --steps must be positive",
        "[rank0]: RuntimeError: Timed out waiting 10000ms",
        "E1129 21:31:06.308000 8930 elastic/multiprocessing/api.py:1002] failed (exitcode: 1) local_rank: 0",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
        "snippets/ch03/hang_demo.py FAILED",
    ]
    assert display.for_page(TORCHRUN_FAILURE, {"full": True})[0].startswith("W1129")
    assert "error: --steps must be positive" not in display.for_page(TORCHRUN_FAILURE, {"drop": ["^error:"]})


def test_an_indented_first_line_is_kept_and_a_tail_inside_a_traceback_is_cut():
    table = "\tGPU0\tGPU1\nGPU0\t X \tNV18\nGPU1\tNV18\t X"
    assert display.for_page(table) == table.splitlines()
    assert display.for_page("\t\x1b[4mGPU0\tGPU1\x1b[0m") == ["\tGPU0\tGPU1"]
    tail = '  File "train.py", line 3, in <module>\n    main()\nValueError: bad batch\ndone'
    assert display.for_page(tail) == ["ValueError: bad batch", "done"]
