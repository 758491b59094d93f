"""The block registry: site-tests/blocks/*.yml, one or more files per chapter.

Keys are snippet references exactly as a page writes them after `--8<--`
("ch02/bench.sh:matmul-gpu" or "ch03/gpt.py"). A runnable block has a tier and an
expectation; a listing names the runnable block that executes it.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNIPPETS = REPO / "snippets"
BLOCKS_DIR = REPO / "site-tests" / "blocks"
RECORDS_DIR = REPO / "site-tests" / "records"

TIER_RE = re.compile(r"^(cpu|gpu:[1-9][0-9]*|multi-node|cluster|external)$")
SHELL_LANGS = {"bash", "sh", "shell"}
ENTRY_KEYS = {"tier", "timeout", "needs", "expect", "listing", "uses", "reason"}
EXPECT_KEYS = {"exit", "output", "files", "metrics", "absent"}
METRIC_RE = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?[0-9.eE+-]+)\s*$")


class RegistryError(ValueError):
    pass


@dataclass
class Entry:
    key: str
    source: Path
    tier: str | None = None
    timeout: int = 300
    needs: list[str] = field(default_factory=list)
    expect: dict = field(default_factory=dict)
    listing: str | None = None
    uses: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def runnable(self) -> bool:
        return self.tier is not None

    @property
    def gpus(self) -> int:
        return int(self.tier.split(":")[1]) if self.tier and self.tier.startswith("gpu:") else 0


def parse_ref(ref: str) -> tuple[Path, str | None]:
    path, _, section = ref.partition(":")
    return SNIPPETS / path, (section or None)


def section_text(path: Path, section: str | None) -> str:
    """The text pymdownx.snippets includes for a file or a named section of it."""
    lines = path.read_text().splitlines()
    marker = re.compile(r"--8<--\s*\[(start|end):([\w.-]+)\]")
    if section is None:
        return "\n".join(ln for ln in lines if not marker.search(ln))
    out, inside, found = [], False, False
    for ln in lines:
        m = marker.search(ln)
        if m and m.group(2) == section:
            inside = m.group(1) == "start"
            found = True
            continue
        if m:
            continue
        if inside:
            out.append(ln)
    if not found:
        raise RegistryError(f"{path.relative_to(REPO)} has no section {section!r}")
    return "\n".join(out)


def _check_metrics(key: str, metrics: dict) -> None:
    for name, cond in metrics.items():
        if not METRIC_RE.match(str(cond)):
            raise RegistryError(f"{key}: metric check {name}: {cond!r} is not like '>= 700'")


def load(blocks_dir: Path = BLOCKS_DIR) -> tuple[dict[str, Entry], dict[str, list[str]]]:
    """All registered entries, and the figures the site build draws from records."""
    entries: dict[str, Entry] = {}
    figures: dict[str, list[str]] = {}
    for f in sorted(blocks_dir.glob("*.yml")):
        data = yaml.safe_load(f.read_text()) or {}
        for key, spec in data.items():
            if key == "claims":
                continue  # load_claims() reads them
            if key == "figures":
                for name, cmd in (spec or {}).items():
                    if name in figures:
                        raise RegistryError(f"{f.name}: figure {name} is registered twice")
                    figures[name] = [str(c) for c in cmd]
                continue
            if key in entries:
                raise RegistryError(f"{f.name}: {key} is registered twice")
            spec = spec or {}
            unknown = set(spec) - ENTRY_KEYS
            if unknown:
                raise RegistryError(f"{f.name}: {key}: unknown keys {sorted(unknown)}")
            e = Entry(key=key, source=f, **spec)
            if (e.tier is None) == (e.listing is None):
                raise RegistryError(f"{f.name}: {key} needs exactly one of tier or listing")
            if e.tier is not None:
                if not TIER_RE.match(e.tier):
                    raise RegistryError(f"{f.name}: {key}: unknown tier {e.tier!r}")
                if not e.expect and e.tier != "external":
                    raise RegistryError(f"{f.name}: {key}: a runnable block needs an expect")
                bad = set(e.expect) - EXPECT_KEYS
                if bad:
                    raise RegistryError(f"{f.name}: {key}: unknown expect keys {sorted(bad)}")
                _check_metrics(key, e.expect.get("metrics", {}))
                if e.tier == "external" and not e.reason:
                    raise RegistryError(f"{f.name}: {key}: an external block needs a reason")
            entries[key] = e
    return entries, figures


# --- which files a block uses, for the hashes in its record -----------------------------

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


@dataclass
class Claim:
    """A statement of the text that compares two records: metric of one over metric of another."""

    says: str
    of: tuple[str, str]
    over: tuple[str, str]
    at_least: float
    source: Path


def load_claims(blocks_dir: Path = BLOCKS_DIR) -> list[Claim]:
    """The `claims:` of every registry file.

        claims:
          - says: DDP on 2 GPUs keeps 95% of one GPU's tokens/s per GPU
            of: [ch03/commands.sh:train-2gpu, tokens_per_s_per_gpu]
            over: [ch03/commands.sh:train-1gpu, tokens_per_s_per_gpu]
            at_least: 0.95
    """
    claims = []
    for f in sorted(blocks_dir.glob("*.yml")):
        data = yaml.safe_load(f.read_text()) or {}
        for c in data.get("claims") or []:
            try:
                claims.append(Claim(says=str(c["says"]), of=tuple(c["of"]), over=tuple(c["over"]),
                                    at_least=float(c["at_least"]), source=f))
            except (KeyError, TypeError, ValueError):
                raise RegistryError(f"{f.name}: a claim needs says, of, over and at_least: {c!r}") from None
    return claims
