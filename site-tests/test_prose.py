"""Prose lint on every page, and the shape and length of each chapter."""

import re

import pytest

from book import prose
from book.pages import DOCS, pages

# The author's minimum length for each chapter, in words of prose.
MIN_WORDS = {"ch01.md": 3500, "ch02.md": 3500, "ch03.md": 4000, "ch04.md": 4000, "ch06.md": 4000, "ch07.md": 4000}
CHAPTERS = sorted(p for p in pages() if re.fullmatch(r"ch\d\d\.md", p.name))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_prose_reads_as_written_by_an_engineer(page):
    findings = prose.lint(page.read_text())
    assert not findings, f"{page.relative_to(DOCS)}:\n" + "\n".join(map(str, findings))


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_the_books_shape(page):
    problems = prose.chapter_shape(page.read_text())
    assert not problems, f"{page.name}: " + "; ".join(problems)


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_long_enough(page):
    n = prose.words(page.read_text())
    assert n >= MIN_WORDS.get(page.name, 3500), f"{page.name}: {n} words of prose"


def test_the_lint_catches_what_it_should():
    text = (
        "Let's dive into the pivotal role of NCCL.\n\n"
        "We leverage a seamless allreduce at 300 TFLOPS.\n\n"
        "- **Speed**: fast\n- **Memory**: small\n- **Cost**: low\n\n"
        "``` { .bash }\n--8<-- \"x.sh:delve\"\n```\n"
    )
    found = "\n".join(map(str, prose.lint(text)))
    for expected in ["let's dive", "crucial/pivotal", "leverage", "seamless", "all-reduce",
                     "TFLOP/s", "bold label"]:
        assert expected in found, expected
    assert "delve" not in found  # fenced blocks are not prose
