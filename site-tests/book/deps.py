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


def _mentioned_paths(text: str, root: Path = SNIPPETS) -> list[Path]:
    """Paths under snippets/ that a text names (relative to `root`, the snippets folder)."""
    found = []
    for token in _PATH_RE.findall(text):
        p = root / token.rstrip("/.").removeprefix("snippets/")
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


def _module_file(base: Path, parts: list[str]) -> list[Path]:
    """The files that importing base/parts[0]/parts[1]... runs: each package's __init__ and the module."""
    out, here = [], base
    for i, part in enumerate(parts):
        pkg, mod = here / part / "__init__.py", here / f"{part}.py"
        if pkg.exists():
            out.append(pkg)
            here = here / part
        elif mod.exists() and i == len(parts) - 1:
            out.append(mod)
            return out
        else:
            return out if i else []
    return out


def _imports_precise(py: Path, root: Path) -> list[Path]:
    """The snippet files a Python file's imports run, module by module (for unused files)."""
    try:
        tree = ast.parse(py.read_text())
    except SyntaxError:
        return []
    # Where a top-level name may live: the file's folder, its package's parent, then any chapter.
    bases = [py.parent]
    if (py.parent / "__init__.py").exists():
        bases.append(py.parent.parent)
    bases += sorted(p for p in root.glob("ch*") if p.is_dir())
    out: list[Path] = []

    def absolute(dotted: str, names: list[str]) -> None:
        parts = dotted.split(".")
        for base in bases:
            hits = _module_file(base, parts)
            if hits:
                out.extend(hits)
                pkg = base.joinpath(*parts)
                out.extend(f for n in names for f in _module_file(pkg, [n]) if pkg.is_dir())
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                absolute(a.name, [])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            absolute(node.module, [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom):
            base = py.parent
            for _ in range(node.level - 1):
                base = base.parent
            parts = node.module.split(".") if node.module else []
            out.extend(_module_file(base, parts))
            pkg = base.joinpath(*parts)
            out.extend(f for a in node.names for f in _module_file(pkg, [a.name]))
    return out


_RUN_WHEN_NAMED = ("__init__.py", "__main__.py", "conftest.py")


def used_files(paths: list[Path], whole_packages: bool = True, root: Path = SNIPPETS) -> list[Path]:
    """The files reached from some paths: folders expand, Python files bring their imports.

    For the hashes a package travels whole (whole_packages=True). For finding unused
    files it does not: a Python module is reached only if something imports it, and a
    package folder named on a command line brings what Python or pytest runs from it
    (__init__, __main__, conftest and test files).
    """
    seen: set[Path] = set()
    todo = list(paths)
    while todo:
        p = todo.pop()
        if p.is_dir():
            files = [q for q in p.rglob("*") if q.is_file() and "__pycache__" not in q.parts]
            if not whole_packages and (p / "__init__.py").exists():
                files = [q for q in files if q.parent == p and (
                    q.name in _RUN_WHEN_NAMED or q.name.startswith("test_") or q.name.endswith("_test.py"))]
            todo.extend(files)
            continue
        if p in seen or not p.is_file():
            continue
        seen.add(p)
        if p.suffix == ".py":
            if whole_packages:
                todo.extend(_imports(p))
                if p.name == "__init__.py" or (p.parent / "__init__.py").exists():
                    todo.append(p.parent)  # a package travels whole
            else:
                todo.extend(_imports_precise(p, root))
                if (p.parent / "__init__.py").exists():
                    todo.append(p.parent / "__init__.py")
        elif p.suffix in {".sh", ".sbatch"}:
            todo.extend(_mentioned_paths(p.read_text(), root))
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
