"""Prose lint for the book's pages: the style guide's list of phrases that read as
machine-written, the book's spellings of its terms, the shape of a chapter, and numbers
with a unit typed into prose."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .fences import FENCE_RE, closing_fence

# Phrases that make text read as machine-generated (style guide, "avoid").
BANNED = [
    (r"\bdelv(e|es|ed|ing)\b", "delve"),
    (r"\bdiv(e|es|ing) into\b", "dive into"),
    (r"\blet'?s dive\b", "let's dive"),
    (r"\bfast-paced\b", "fast-paced"),
    (r"\bever-evolving\b", "ever-evolving"),
    (r"\bit'?s worth noting\b|\bit is worth noting\b", "it's worth noting"),
    (r"\bit is important to note\b", "it is important to note"),
    (r"\b(crucial|crucially|pivotal|paramount)\b", "crucial/pivotal/paramount"),
    (r"\bseamless(ly)?\b", "seamless"),
    (r"\brobust(ly|ness)?\b", "robust"),
    (r"\bleverag(e|es|ed|ing)\b", "leverage"),
    (r"\bharness(es|ed|ing)? the power\b", "harness the power"),
    (r"\bunlock(s|ed|ing)?\b", "unlock"),
    (r"\bgame[- ]changer\b", "game-changer"),
    (r"\bembark(s|ed|ing)? on\b", "embark on"),
    (r"\bnavigat(e|es|ing) the complexit", "navigate the complexities"),
    (r"\ba testament to\b", "a testament to"),
    (r"\bplays? an? (vital|crucial|key|pivotal|critical) role\b", "plays a vital role"),
    (r"\bnot only\b[^.?!]{0,120}\bbut also\b", "not only ... but also"),
    (r"\bin conclusion\b", "in conclusion"),
    (r"\b(in|to) (summary|summarize|summarise),", "in summary,"),
    (r"\?\s+(It means|The answer is|Simply put|Well,)", "a question answered by the next sentence"),
    (r"\bin today'?s\b", "in today's ..."),
    (r"\bjourney\b", "journey"),
    (r"\btapestry\b|\brealm of\b|\blandscape of\b", "tapestry/realm/landscape of"),
]

# One spelling per term across the book (style guide, "Consistency").
TERMS = [
    (r"\ball[ ]?reduce\b|\bAllReduce\b|\ball_reduce\b", "all-reduce"),
    (r"\ball[ ]?gather\b|\bAllGather\b", "all-gather"),
    (r"\breduce[ ]?scatter\b|\bReduceScatter\b", "reduce-scatter"),
    (r"\bNVlink\b|\bNvlink\b|\bnvlink\b", "NVLink"),
    (r"\bInfiniband\b|\binfiniband\b", "InfiniBand"),
    (r"\bTFLOPS\b|\bTFlops\b|\bTFLOPs\b", "TFLOP/s"),
    (r"\btokens/sec\b|\btok/s\b|\btokens per sec\b", "tokens/s"),
    (r"\bGBps\b|\bGB/sec\b", "GB/s"),
    (r"\bZero-3\b|\bZeRO3\b|\bZeRO 3\b", "ZeRO-3"),
    (r"\bFSDP 2\b|\bFSDPv2\b", "FSDP2"),
    (r"\bkv[- ]cache\b|\bKV-cache\b", "KV cache"),
]

EMOJI = re.compile("[\U0001F300-\U0001FAFF\U00002600-\U000027BF\U0001F000-\U0001F2FF]")
INLINE_CODE = re.compile(r"`[^`\n]*`")
MACRO = re.compile(r"\{\{.*?\}\}")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
ATTR_LIST = re.compile(r"\{\s*[:#.][^}]*\}")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass
class Finding:
    line: int
    message: str

    def __str__(self):
        return f"line {self.line}: {self.message}"


def prose_lines(text: str, macro: str = " 0 ") -> list[tuple[int, str]]:
    """(line number, text) of prose: no fenced blocks, inline code, macros or link targets.

    Each macro is replaced by `macro` (a word, so that word counts still count it).
    """
    text = HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if m:
            close = closing_fence(m["fence"])
            i += 1
            while i < len(lines) and not close.match(lines[i]):
                i += 1
            i += 1
            continue
        line = lines[i]
        if not re.match(r"^\s*(\{[:\s]|\*\[)", line):  # attribute lists and abbreviations
            line = LINK_TARGET.sub("]", MACRO.sub(macro, INLINE_CODE.sub(" code ", line)))
            line = ATTR_LIST.sub("", line)
            out.append((i + 1, line))
        i += 1
    return out


def lint(text: str) -> list[Finding]:
    findings = []
    lines = prose_lines(text)
    for n, line in lines:
        for pattern, name in BANNED:
            if re.search(pattern, line, re.IGNORECASE):
                findings.append(Finding(n, f"machine-sounding phrase ({name}): {line.strip()[:90]}"))
        for pattern, name in TERMS:
            if re.search(pattern, line):
                findings.append(Finding(n, f"write {name!r}: {line.strip()[:90]}"))
        if EMOJI.search(line):
            findings.append(Finding(n, "emoji in prose"))
    # Paragraph-level: em-dash chains and bullet lists that all open with a bold label.
    para, start, items = [], 0, []
    for n, line in lines + [(10**9, "")]:
        if line.strip():
            if not para:
                start = n
            para.append(line)
            if re.match(r"^\s*([-*]|\d+\.)\s", line):
                items.append(line)
            continue
        joined = " ".join(para)
        if joined.count("—") > 1:
            findings.append(Finding(start, "em-dash chain: more than one em dash in a paragraph"))
        if len(items) >= 3 and all(re.match(r"^\s*([-*]|\d+\.)\s+\*\*[^*]+\*\*:?", i) for i in items):
            findings.append(Finding(start, "every bullet opens with a bold label"))
        para, items = [], []
    return findings


def words(text: str) -> int:
    """Words of prose, not counting code, tables, headings' markers or markup."""
    count = 0
    for _, line in prose_lines(text):
        s = line.strip()
        if s.startswith("|") or re.match(r"^(=== |!!!|\?\?\?)", s):
            continue
        count += len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'’.,/%-]*", s))
    return count


TOPICS_LEAD = "In this chapter, we're going to cover the following main topics:"
FIXED_SECTIONS = ["Technical requirements", "Summary", "Further reading"]


def chapter_shape(text: str) -> list[str]:
    """What a chapter page lacks of the shape the style guide gives it."""
    problems = []
    h2 = [re.sub(r"\s*\{.*\}\s*$", "", h).strip() for h in re.findall(r"^## (.+)$", text, re.M)]
    for s in FIXED_SECTIONS:
        if s not in h2:
            problems.append(f"no '## {s}' section")
    if TOPICS_LEAD not in text:
        problems.append(f"no topic list introduced by {TOPICS_LEAD!r}")
        return problems
    after = text.split(TOPICS_LEAD, 1)[1].lstrip("\n")
    topics = []
    for line in after.splitlines():
        m = re.match(r"^\s*[-*]\s+(.+)$", line)
        if not m:
            break
        topics.append(m.group(1).strip().rstrip("."))
    body = [h for h in h2 if h not in FIXED_SECTIONS]
    if topics != body:
        problems.append(f"topic list {topics} does not match the section headings {body}")
    return problems


# --- numbers with a unit, typed into prose --------------------------------------------

UNITS = [
    "GB/s", "GiB/s", "TB/s", "MB/s", "Gb/s", "Gbit/s",
    "PFLOP/s", "TFLOP/s", "GFLOP/s", "PFLOP", "TFLOP", "GFLOP",
    "tokens/s", "req/s", "ms", "µs", "μs", "us", "ns",
    "TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB", "kB",
]
_UNIT_ALTERNATIVES = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
NUMBER_UNIT = re.compile(
    r"(?<![\w.,/$])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?[\s\u00a0\u202f]?-?(" + _UNIT_ALTERNATIVES + r")(?!\w)"
)
CITATION = re.compile(r"\[\^[^\]\s]+\](?!:)")
FOOTNOTE_DEF = re.compile(r"^\s*\[\^[^\]]+\]:")
SENTENCE_END = re.compile(r"(?<=[.!?])[\s]+(?=[A-Z\[(*_])")
ALLOW_FILE = Path(__file__).resolve().parents[1] / "prose-numbers.yml"


def allowed_numbers(path: Path = ALLOW_FILE) -> dict[str, dict[str, str]]:
    """The per-page allow-list: {page: {"1 KiB": reason}}."""
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    return {str(page): {str(k): str(v) for k, v in (items or {}).items()} for page, items in (data or {}).items()}


def normal_number(number: str, unit: str) -> str:
    return f"{number} {unit}"


BINARY_UNITS = {"KiB", "MiB", "GiB", "TiB"}


def is_set_size(number: str, unit: str) -> bool:
    """A power-of-two size in binary units (1 KiB, 16 MiB, 4 GiB) is a size someone set,
    a message or a buffer, not a measured result: measurements are never that round."""
    if unit not in BINARY_UNITS or not number.isdigit():
        return False
    value = int(number)
    return value > 0 and value & (value - 1) == 0


def typed_numbers(text: str, allowed: dict[str, str] | None = None) -> list[Finding]:
    """Numbers followed by a unit of measure, typed into prose.

    Not flagged: numbers in fenced blocks, inline code, macros and link targets; any
    number in a sentence that carries a footnote citation (`[^h100]`) or in a footnote's
    definition; power-of-two sizes in binary units (`is_set_size`); and numbers on the
    page's allow-list (`prose-numbers.yml`, whose `all:` entries hold on every page).
    """
    allowed = allowed or {}
    findings = []
    for n, line in prose_lines(text, macro=" \u27e6macro\u27e7 "):
        if FOOTNOTE_DEF.match(line):
            continue
        for sentence in SENTENCE_END.split(line):
            if CITATION.search(sentence):
                continue
            for m in NUMBER_UNIT.finditer(sentence):
                shown = normal_number(m.group(1) + (m.group(2) or ""), m.group(3))
                if shown in allowed or is_set_size(m.group(1) + (m.group(2) or ""), m.group(3)):
                    continue
                findings.append(Finding(n, f"typed number with a unit, {shown!r}: render it from a record, "
                                           f"cite a source in the sentence, or allow-list it: "
                                           f"{sentence.strip()[:100]}"))
    return findings
