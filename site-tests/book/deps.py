"""Which snippet files a block uses, and their hashes: what a record's `snippets` holds.

A block uses the snippet files its commands name, the Python modules those import
(a package travels whole), the files shell scripts it runs name, and anything the
registry lists under `uses:`. A record stays fresh only while these hashes match.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shlex
from pathlib import Path

from .registry import REPO, SNIPPETS, Entry, parse_ref, section_text

_PATH_RE = re.compile(r"snippets/[\w./-]+")


def _mentioned_paths(text: str) -> list[Path]:
    found = []
    for token in _PATH_RE.findall(text):
        p = REPO / token.rstrip("/.")
        if p.exists():
            found.append(p)
    return found


def _imports(py: Path) -> list[Path]:
    """Modules under snippets/ that a Python file imports (same folder first)."""
    try:
        tree = ast.parse(py.read_text())
    except SyntaxError:
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.update(a.name for a in node.names)
            if node.module:
                names.add(node.module.split(".")[0])
    out = []
    for name in sorted(names):
        local = [py.parent / f"{name}.py", py.parent / name / "__init__.py"]
        hits = [p for p in local if p.exists()]
        if not hits:
            hits = sorted(SNIPPETS.glob(f"ch*/{name}.py")) + sorted(SNIPPETS.glob(f"ch*/{name}/__init__.py"))
        out.extend(hits)
    return out


def used_files(paths: list[Path]) -> list[Path]:
    """The files reached from some paths: folders expand, Python files bring their imports."""
    seen: set[Path] = set()
    todo = list(paths)
    while todo:
        p = todo.pop()
        if p.is_dir():
            todo.extend(q for q in p.rglob("*") if q.is_file() and "__pycache__" not in q.parts)
            continue
        if p in seen or not p.is_file():
            continue
        seen.add(p)
        if p.suffix == ".py":
            todo.extend(_imports(p))
            if p.name == "__init__.py" or (p.parent / "__init__.py").exists():
                todo.append(p.parent)  # a package travels whole
        elif p.suffix in {".sh", ".sbatch"}:
            todo.extend(_mentioned_paths(p.read_text()))
    return sorted(seen)


def block_hashes(entry: Entry) -> dict[str, str]:
    """sha256 of the block's own text and of every snippet file it uses."""
    path, section = parse_ref(entry.key)
    text = section_text(path, section)
    hashes = {entry.key: hashlib.sha256(text.encode()).hexdigest()}
    extra = [SNIPPETS / u for u in entry.uses]
    for f in used_files(_mentioned_paths(text) + extra):
        hashes[str(f.relative_to(SNIPPETS))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return hashes


def mentions(command_text: str, listed: Path) -> bool:
    """Whether a block's commands execute or name a listed file (or its folder or module)."""
    rel = listed.relative_to(REPO)
    candidates = {str(rel), str(rel.parent)}
    if listed.suffix == ".py":
        candidates.add(".".join(rel.with_suffix("").parts))
        candidates.add(".".join(rel.parent.parts))
    tokens = shlex.split(command_text, comments=False)
    for t in tokens:
        t = t.rstrip("/")
        if t in candidates:
            return True
    # A listed module imported by a script the block runs counts too.
    return any(listed in used_files([p]) for p in _mentioned_paths(command_text))
