"""Pages as the site build sees them: snippets expanded, every fenced block extracted.

A page is converted with the Markdown extensions and settings of mkdocs.yml, the
same records renderer as the build hook, and one change: a catch-all SuperFences
fence that records each block instead of highlighting it. So the blocks found here
are the blocks a reader sees, after `--8<--` expansion.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import markdown
import yaml

from .fences import INCLUDE_RE, RawFence, raw_fences  # noqa: F401  (RawFence: imported from here)
from .registry import REPO, SNIPPETS
from .render import Renderer

DOCS = REPO / "docs"


@dataclass
class Block:
    page: str
    index: int
    lang: str
    classes: list[str]
    src: str
    ref: str | None = None
    raw_line: int | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def generated(self) -> bool:
        return "recorded-output" in self.classes

    @property
    def where(self) -> str:
        return f"{self.page}:{self.raw_line}" if self.raw_line else self.page


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix)


@cache
def site_config() -> dict:
    return yaml.load((REPO / "mkdocs.yml").read_text(), Loader=_Loader)


def markdown_settings(snippets_dir: Path = SNIPPETS) -> tuple[list[str], dict]:
    names, configs = [], {}
    for item in site_config()["markdown_extensions"]:
        if isinstance(item, dict):
            (name, cfg), = item.items()
            names.append(name)
            configs[name] = copy.deepcopy(cfg or {})
        else:
            names.append(item)
    configs.setdefault("pymdownx.snippets", {})["base_path"] = [str(snippets_dir)]
    return names, configs


def expand(text: str, page: str, renderer: Renderer, snippets_dir: Path = SNIPPETS) -> list[Block]:
    """Every fenced block of a page after rendering and snippet expansion, in order."""
    found: list[Block] = []

    def record(source, language, class_name, options, md, **kwargs):
        classes = list(kwargs.get("classes") or [])
        found.append(Block(page, len(found), language or "", classes, source,
                           attrs=dict(kwargs.get("attrs") or {})))
        return f'<pre class="recorded">{html.escape(source)}</pre>'

    def validate(language, inputs, options, attrs, md):
        options.update(attrs)  # keep every attribute instead of rejecting unknown ones
        return True

    names, configs = markdown_settings(snippets_dir)
    configs["pymdownx.superfences"] = {
        "custom_fences": [{"name": "*", "class": "recorded", "format": record, "validator": validate}]
    }
    configs.pop("pymdownx.highlight", None)
    names = [n for n in names if n != "pymdownx.highlight"]
    md = markdown.Markdown(extensions=names, extension_configs=configs)
    md.convert(renderer.page(text))
    return found


def page_blocks(
    path: Path, renderer: Renderer, snippets_dir: Path = SNIPPETS, docs_dir: Path = DOCS
) -> tuple[list[RawFence], list[Block]]:
    """The page's raw fences and its expanded blocks, with each block's snippet reference."""
    text = path.read_text()
    rel = str(path.relative_to(docs_dir)) if path.is_relative_to(docs_dir) else path.name
    raws = raw_fences(text)
    blocks = expand(text, rel, renderer, snippets_dir)
    authored = [b for b in blocks if not b.generated]
    if len(authored) == len(raws):
        for raw, block in zip(raws, authored, strict=True):
            block.raw_line = raw.line
            if len(raw.refs) == 1 and not raw.typed:
                block.ref = raw.refs[0]
    return raws, blocks


def pages(docs_dir: Path = DOCS) -> list[Path]:
    return sorted(docs_dir.rglob("*.md"))
