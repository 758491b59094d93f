"""The block contract of the book, as checks that return the problems they find."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .deps import mentions, used_files
from .fences import other_code
from .pages import DOCS, Block, page_blocks, pages
from .registry import REPO, SHELL_LANGS, SNIPPETS, Entry, parse_ref, section_text
from .render import Renderer

# Prompts of the common shapes: "$ ", "# ", "% ", "> ", ">>> ", "(.venv) $ ",
# "user@host:~# ", "[user@host dir]$ ", "PS C:\\> ".
PROMPT_RE = re.compile(
    r"^(\([^)]*\)\s*)?"  # a virtual environment's name
    r"(\[?[\w.-]+@[\w.-]+[^$#%>]*\]?\s*|PS [^>]*|[\w.-]*:?~?[\w./~-]*)?"  # user@host:dir, PS C:\
    r"([$#%>❯]|>>>)(\s|$)"
)
SHELLS = {"bash", "sh", "zsh", "dash", "ksh"}
# Operators that join or redirect and are fine in a pasted line.
ALLOWED_OPS = {"|", "|&", ">", ">>", "<", "<<<", ">&", "&>", "&>>", "<&", ">|", "<>"}


def _tokens(s: str) -> list[str]:
    lexer = shlex.shlex(s, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def shell_line_problem(line: str) -> str | None:
    """Why a line may not stand in a shell block, or None if it is a plain command."""
    s = line.strip()
    if not s:
        return None
    if PROMPT_RE.match(s) or s in {"$", "#"}:
        return "starts with a prompt or comment"
    if s.endswith("\\"):
        return "continues onto the next line"
    try:
        tokens = _tokens(s)
    except ValueError as exc:
        return f"does not parse as one shell command ({exc})"
    words = []
    for tok in tokens:
        if tok.startswith("#"):
            return "has a comment"
        if set(tok) <= set(";&|<>"):
            if tok == "&":
                return "starts a background job"
            if tok in {"<<", "<<-"}:
                return "starts a here-document, which spans lines"
            if tok not in ALLOWED_OPS:
                return f"chains commands with {tok!r}"
        words.append(tok)
    # The command word: after any VAR=value assignments and `env`, `sudo`, `time`.
    i = 0
    while i < len(words) and (re.match(r"^[A-Za-z_]\w*=", words[i]) or words[i] in {"env", "sudo", "time"}):
        i += 1
    if i < len(words) and words[i] in {"cd", "pushd", "popd"}:
        return "changes directory (commands run from the repository root)"
    for j, w in enumerate(words):
        if Path(w).name in SHELLS | {"eval"} and j + 1 < len(words):
            flag = words[j + 1]
            inner = words[j + 2] if Path(w).name != "eval" and j + 2 < len(words) else flag
            if Path(w).name == "eval" or (flag.startswith("-") and "c" in flag):
                why = shell_line_problem(inner)
                if why:
                    return f"hides commands in {Path(w).name} {'-c ' if w != 'eval' else ''}that {why}"
    return None


@dataclass
class Inventory:
    blocks: list[Block]
    problems: list[str]


def inventory(
    entries: dict[str, Entry],
    docs_dir: Path = DOCS,
    snippets_dir: Path = SNIPPETS,
    renderer: Renderer | None = None,
) -> Inventory:
    renderer = renderer or Renderer(entries)
    problems: list[str] = []
    all_blocks: list[Block] = []
    for page in pages(docs_dir):
        raws, blocks = page_blocks(page, renderer, snippets_dir, docs_dir)
        rel = page.relative_to(docs_dir)
        for line, what in other_code(page.read_text()):
            problems.append(f"{rel}:{line}: {what}")
        for raw in raws:
            if raw.typed:
                problems.append(f"{rel}:{raw.line}: code typed into the page (include it from snippets/)")
            elif len(raw.refs) != 1:
                problems.append(f"{rel}:{raw.line}: a fence must include exactly one snippet")
        authored = [b for b in blocks if not b.generated]
        if len(authored) != len(raws):
            problems.append(
                f"{rel}: {len(authored)} blocks after expansion but {len(raws)} fences in the page "
                "(a block arrived through an include outside a fence?)"
            )
        page_keys: list[str] = []
        for b in authored:
            all_blocks.append(b)
            if b.ref is None:
                continue
            e = entries.get(b.ref)
            # A whole shell script shown as a listing (run by a block that names it) is a
            # script, not commands to paste: its comments and multi-line constructs stay.
            script = e is not None and e.listing and ":" not in b.ref
            if b.lang in SHELL_LANGS and not script:
                for n, line in enumerate(b.src.splitlines(), 1):
                    why = shell_line_problem(line)
                    if why:
                        problems.append(f"{b.where}: {b.ref} line {n} {why}: {line.strip()!r}")
            if b.lang == "mermaid":
                continue
            if e is None:
                problems.append(f"{b.where}: block {b.ref} is not registered in site-tests/blocks/")
                continue
            if b.lang in SHELL_LANGS and not e.runnable and not script:
                problems.append(f"{b.where}: shell block {b.ref} needs a tier and an expectation")
            if b.lang not in SHELL_LANGS and e.runnable:
                problems.append(f"{b.where}: {b.ref} is a {b.lang or 'plain'} listing; register it with listing:")
            if e.listing:
                problems.extend(_listing_problems(b, e, entries))
            for need in e.needs:
                if need not in page_keys:
                    problems.append(f"{b.where}: {b.ref} needs {need}, which does not run before it on this page")
            page_keys.append(b.ref)
    return Inventory(all_blocks, problems)


def _listing_problems(b: Block, e: Entry, entries: dict[str, Entry]) -> list[str]:
    runner = entries.get(e.listing)
    if runner is None or not runner.runnable:
        return [f"{b.where}: listing {b.ref} names {e.listing}, which is not a registered runnable block"]
    listed, _ = parse_ref(b.ref)
    text = section_text(*parse_ref(runner.key))
    if not mentions(text, listed):
        return [f"{b.where}: listing {b.ref}: block {e.listing} does not run or name {listed.relative_to(REPO)}"]
    return []


def unused_snippets(inv: Inventory, entries: dict[str, Entry], snippets_dir: Path = SNIPPETS,
                    figures: dict[str, list[str]] | None = None) -> list[str]:
    """Snippet files that no page includes, no block on a page runs or imports, and no
    figure of the site build (`figures:` in the registries) runs.

    Inside a package a module counts only if something imports it: a package travels
    whole for the hashes, but a file in it that nothing uses is unused all the same.
    """
    reached: set[Path] = set()

    def reach(paths):
        reached.update(used_files(paths, whole_packages=False, root=snippets_dir))

    for b in inv.blocks:
        if not b.ref:
            continue
        path, section = parse_ref(b.ref)
        path = snippets_dir / path.relative_to(SNIPPETS)
        reached.add(path)
        e = entries.get(b.ref)
        if e and e.runnable and path.exists():
            text = section_text(path, section)
            named = [snippets_dir / t.removeprefix("snippets/")
                     for t in shlex.split(text) if t.startswith("snippets/")]
            reach([p for p in named if p.exists()] + [snippets_dir / u for u in e.uses])
        elif path.exists():
            reach([path])
    for cmd in (figures or {}).values():
        named = [snippets_dir / c.removeprefix("snippets/") for c in cmd if c.startswith("snippets/")]
        reach([p for p in named if p.exists()])
    problems = []
    for f in sorted(snippets_dir.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f not in reached:
            problems.append(f"snippets/{f.relative_to(snippets_dir)} is used by no page")
    return problems


def unused_entries(inv: Inventory, entries: dict[str, Entry]) -> list[str]:
    on_pages = {b.ref for b in inv.blocks if b.ref}
    return [f"{e.source.name}: {k} is registered but no page shows it"
            for k, e in sorted(entries.items()) if k not in on_pages]
