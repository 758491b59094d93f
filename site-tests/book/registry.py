"""The block registry: site-tests/blocks/*.yml, one or more files per chapter.

Keys are snippet references exactly as a page writes them after `--8<--`
("ch02/bench.sh:matmul-gpu" or "ch03/gpt.py"). A runnable block has a tier and an
expectation; a listing names the runnable block that executes it. Claims (statements
comparing two records) and figures (commands that draw records) live beside them.

Which snippet files a block uses, and their hashes, are `deps`'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNIPPETS = REPO / "snippets"
BLOCKS_DIR = REPO / "site-tests" / "blocks"
RECORDS_DIR = REPO / "site-tests" / "records"

TIER_RE = re.compile(r"^(cpu|gpu:[1-9][0-9]*|multi-node|cluster|external)$")
SHELL_LANGS = {"bash", "sh", "shell"}
ENTRY_KEYS = {"tier", "timeout", "needs", "expect", "listing", "uses", "reason", "repeat", "show"}
EXPECT_KEYS = {"exit", "output", "files", "metrics", "absent"}
SHOW_KEYS = {"drop", "cut", "full"}
# Tiers whose blocks need a fresh record before the site is published; multi-node and
# cluster blocks need a record or the "not verified on this tier" note under them.
RECORDED_TIERS = re.compile(r"^(cpu|gpu:[1-9][0-9]*)$")
NOTED_TIERS = {"multi-node", "cluster"}
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
    repeat: int = 1
    show: dict = field(default_factory=dict)

    @property
    def runnable(self) -> bool:
        return self.tier is not None

    @property
    def needs_record(self) -> bool:
        """Whether publishing needs a fresh record of this block (cpu and gpu:N tiers)."""
        return bool(self.tier and RECORDED_TIERS.match(self.tier))

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


def _check_patterns(where: str, patterns) -> None:
    if not isinstance(patterns, list):
        raise RegistryError(f"{where}: expected a list of regular expressions, got {patterns!r}")
    for p in patterns:
        try:
            re.compile(str(p))
        except re.error as exc:
            raise RegistryError(f"{where}: {p!r} is not a regular expression ({exc})") from None


def _check_entry(f: Path, e: Entry) -> None:
    where = f"{f.name}: {e.key}"
    if (e.tier is None) == (e.listing is None):
        raise RegistryError(f"{where} needs exactly one of tier or listing")
    if not isinstance(e.repeat, int) or isinstance(e.repeat, bool) or e.repeat < 1:
        raise RegistryError(f"{where}: repeat must be a whole number of runs, 1 or more")
    if not isinstance(e.timeout, (int, float)) or e.timeout <= 0:
        raise RegistryError(f"{where}: timeout must be a positive number of seconds")
    if not isinstance(e.show, dict) or set(e.show) - SHOW_KEYS:
        raise RegistryError(f"{where}: show takes only {sorted(SHOW_KEYS)}")
    _check_patterns(f"{where}: show.drop", e.show.get("drop", []))
    cut = e.show.get("cut", [])
    if not isinstance(cut, list) or any(not isinstance(c, list) or len(c) != 2 for c in cut):
        raise RegistryError(f"{where}: show.cut takes a list of [pattern, replacement] pairs")
    _check_patterns(f"{where}: show.cut", [c[0] for c in cut])
    if e.tier is None:
        if e.repeat != 1 or e.show:
            raise RegistryError(f"{where}: repeat and show belong to runnable blocks")
        return
    if not TIER_RE.match(e.tier):
        raise RegistryError(f"{where}: unknown tier {e.tier!r}")
    if not e.expect and e.tier != "external":
        raise RegistryError(f"{where}: a runnable block needs an expect")
    bad = set(e.expect) - EXPECT_KEYS
    if bad:
        raise RegistryError(f"{where}: unknown expect keys {sorted(bad)}")
    for k in ("output", "absent"):
        _check_patterns(f"{where}: expect.{k}", e.expect.get(k, []))
    _check_metrics(e.key, e.expect.get("metrics", {}))
    if e.tier == "external" and not e.reason:
        raise RegistryError(f"{where}: an external block needs a reason")


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
            _check_entry(f, e)
            entries[key] = e
    return entries, figures


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


def claims_naming(key: str, claims: list[Claim]) -> list[Claim]:
    return [c for c in claims if key in (c.of[0], c.over[0])]


# Older code imported the dependency hashing from here; it lives in deps now.
_MOVED = {"block_hashes", "used_files", "mentions"}


def __getattr__(name: str):
    if name in _MOVED:
        from . import deps

        return getattr(deps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
