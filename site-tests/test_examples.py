"""Python examples: the listings on the pages and the examples in the snippets' docstrings.

Page listings are taken after snippet expansion (what the reader copies) and linted
with ruff through pytest-examples; `>>>` examples in docstrings run under doctest.
"""

import doctest
import importlib
import importlib.util
import sys

import pytest
from pytest_examples import CodeExample, EvalExample

from book import registry
from book.contract import inventory
from book.registry import REPO, SNIPPETS

ENTRIES = registry.load()[0]

LISTINGS = [b for b in inventory(ENTRIES).blocks if b.lang == "python" and b.ref]
DOCTEST_FILES = sorted(p for p in SNIPPETS.rglob("*.py") if ">>> " in p.read_text())

# A listing may be a section of a file: names it uses can be defined outside it.
PARTIAL_OK = ["F821", "F841", "F401", "F811", "E402", "I001"]


@pytest.mark.parametrize("block", LISTINGS, ids=[b.ref for b in LISTINGS])
def test_page_listing_is_clean_python(block, tmp_path, request):
    ev = EvalExample(tmp_path=tmp_path, pytest_request=request)
    ev.set_config(ruff_ignore=PARTIAL_OK, ruff_line_length=100, target_version="py310")
    ev.lint_ruff(CodeExample.create(block.src, path=REPO / "docs" / block.page))


def test_snippets_have_doctests():
    assert DOCTEST_FILES, "no snippet has a '>>> ' example: the doctest test would test nothing"


@pytest.mark.parametrize("path", DOCTEST_FILES, ids=lambda p: str(p.relative_to(SNIPPETS)))
def test_doctests_in_snippets(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))
    if (path.parent / "__init__.py").exists():
        monkeypatch.syspath_prepend(str(path.parent.parent))
        name = f"{path.parent.name}.{path.stem}"
        module = importlib.import_module(name)
    else:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 0, f"{path.name} has '>>> ' but doctest found no examples"
    assert failures == 0, f"{failures} of {tried} doctest examples failed in {path.name}"
