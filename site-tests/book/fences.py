"""Fenced code blocks in a page's Markdown: one parser for pages, prose, render and the contract.

A fence opens with three or more backticks or tildes, possibly indented (inside a
content tab or an admonition), and closes with at least as many of the same character.
Besides fences, Markdown has two other ways to put code on a page, an indented block
and raw HTML; `other_code` finds both so that the contract can refuse them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<header>.*)$")
INCLUDE_RE = re.compile(r"^\s*-{1,}8<-{1,}\s+\"([^\"]+)\"\s*$")
# {{ name(...) }}: the render macros. Any name is matched so that a misspelt one is caught.
MACRO_RE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\((.*?)\)\s*\}\}")


def closing_fence(fence: str) -> re.Pattern:
    return re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")


@dataclass
class RawFence:
    line: int  # 1-based line of the opening fence
    indent: str
    header: str
    body: list[str]
    end: int = 0  # 1-based line of the closing fence (or the last line if unclosed)

    @property
    def refs(self) -> list[str]:
        return [m.group(1) for b in self.body if (m := INCLUDE_RE.match(b))]

    @property
    def typed(self) -> list[str]:
        """Lines of the fence that are not `--8<--` includes (code typed into the page)."""
        return [b for b in self.body if b.strip() and not INCLUDE_RE.match(b)]


def raw_fences(text: str) -> list[RawFence]:
    """Every fenced block of a page's Markdown, in order."""
    lines = text.splitlines()
    fences, i = [], 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        close = closing_fence(m["fence"])
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        end = min(j, len(lines) - 1) + 1
        fences.append(RawFence(i + 1, m["indent"], m["header"].strip(), lines[i + 1 : j], end))
        i = j + 1
    return fences


def fenced_lines(text: str) -> set[int]:
    """1-based numbers of the lines that belong to a fence, its opening and closing lines included."""
    inside: set[int] = set()
    for f in raw_fences(text):
        inside.update(range(f.line, f.end + 1))
    return inside


_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
# Content tabs, admonitions, collapsible blocks, footnote and definition-list bodies.
_CONTAINER = re.compile(r'^\s*(===\s+"|!!!|\?\?\?\+?|\[\^[^\]]+\]:|:\s{3})')
_RAW_CODE = re.compile(r"<pre\b|<code\b", re.IGNORECASE)


def other_code(text: str) -> list[tuple[int, str]]:
    """(line, what) for code that reaches a page without a fence.

    - an indented code block: a line indented by four spaces (or a tab) more than the
      container it sits in, after a blank line, where Markdown would start a code block;
      lines inside content tabs (`=== "CPU"`), admonitions and list items are indented
      by their container and are not code;
    - raw HTML `<pre>` or `<code>` outside a fence.
    """
    lines = text.splitlines()
    fenced = fenced_lines(text)
    found: list[tuple[int, str]] = []
    # The indentation that a container (tab, admonition, list item) gives its content.
    containers: list[int] = []
    prev_blank = True
    in_html_comment = False
    for n, line in enumerate(lines, 1):
        if n in fenced:
            prev_blank = False
            continue
        if "<!--" in line and "-->" not in line.split("<!--", 1)[1]:
            in_html_comment = True
        if in_html_comment:
            if "-->" in line:
                in_html_comment = False
            continue
        if not line.strip():
            prev_blank = True
            continue
        indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
        while containers and indent < containers[-1]:
            containers.pop()
        base = containers[-1] if containers else 0
        if _CONTAINER.match(line) or _LIST_ITEM.match(line):
            m = _LIST_ITEM.match(line)
            containers.append(len(m.group(0).expandtabs(4)) if m else indent + 4)
        elif prev_blank and indent >= base + 4:
            found.append((n, "an indented code block (four spaces): use a fenced block that includes a snippet"))
        code_free = re.sub(r"`[^`\n]*`", "", line)
        if _RAW_CODE.search(code_free):
            found.append((n, "raw HTML <pre> or <code>: use a fenced block that includes a snippet"))
        prev_blank = False
    return found
