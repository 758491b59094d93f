"""Prose lint on every page, numbers typed into prose, and the shape and length of each chapter."""

import re

import pytest

from book import prose
from book.pages import DOCS, pages

ALLOWED = prose.allowed_numbers()

# The author's minimum length for each chapter, in words of prose.
MIN_WORDS = {"ch01.md": 3500, "ch02.md": 3500, "ch03.md": 4000, "ch04.md": 4000, "ch06.md": 4000,
             "ch07.md": 4000, "ch08.md": 4000, "ch11.md": 4000}
CHAPTERS = sorted(p for p in pages() if re.fullmatch(r"ch\d\d\.md", p.name))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_prose_reads_as_written_by_an_engineer(page):
    findings = prose.lint(page.read_text())
    assert not findings, f"{page.relative_to(DOCS)}:\n" + "\n".join(map(str, findings))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_no_measured_number_is_typed_into_prose(page):
    """A number with a unit comes from a record, carries a citation, or is allow-listed."""
    rel = str(page.relative_to(DOCS))
    findings = prose.typed_numbers(page.read_text(), {**ALLOWED.get("all", {}), **ALLOWED.get(rel, {})})
    assert not findings, f"{rel}:\n" + "\n".join(map(str, findings))


def test_the_allow_list_is_explained_and_used():
    for page, numbers in ALLOWED.items():
        if page == "all":
            assert all(reason.strip() for reason in numbers.values()), "an all: entry needs a reason"
            continue
        assert (DOCS / page).exists(), f"prose-numbers.yml names {page}, which is not a page"
        text = (DOCS / page).read_text()
        for number, reason in numbers.items():
            assert reason.strip(), f"{page}: {number!r} needs a reason"
            found = {prose.normal_number(m.group(1) + (m.group(2) or ""), m.group(3))
                     for _, line in prose.prose_lines(text) for m in prose.NUMBER_UNIT.finditer(line)}
            assert number in found, f"{page}: {number!r} is allow-listed but not on the page"


def test_the_number_check_catches_a_typed_number_and_spares_a_cited_one():
    text = (
        "# A page\n\n"
        "The all-reduce reached 350 GB/s on two GPUs, and a step took about 200 ms.\n\n"
        "One H100 has 80 GB of memory[^h100]. We measured {{ metric(\"k\", \"gbps\", \".0f\") }} GB/s.\n\n"
        "Run it with `--max-model-len 1024` and a `4 GiB` message; see [the benchmark](x.md#5-ms).\n\n"
        "A 3 KiB message pays mostly start-up time, a 1 KiB one too.\n\n"
        "``` { .text }\n100 GB/s in a block\n```\n\n"
        "[^h100]: NVIDIA, H100 datasheet: 80 GB of HBM3, 3.35 TB/s.\n"
    )
    found = prose.typed_numbers(text, {"3 KiB": "a message size the reader chooses"})
    shown = [f.message.split("'")[1] for f in found]
    assert shown == ["350 GB/s", "200 ms"], found
    assert all(f.line == 3 for f in found)
    # Without the citation the datasheet figure is flagged too; without the allow-list, 1 KiB.
    assert "80 GB" in str(prose.typed_numbers(text.replace("[^h100]. ", ". ")))
    assert "3 KiB" in str(prose.typed_numbers(text))
    # A power-of-two size in binary units is a size someone set, not a result.
    assert not any("'1 KiB'" in f.message for f in prose.typed_numbers(text))
    assert prose.is_set_size("256", "MiB") and not prose.is_set_size("25", "MiB")
    assert not prose.is_set_size("1", "GB")


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


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_footnotes_are_numbered_in_reading_order(page):
    """Markdown numbers footnotes in the order of their definitions, so the definitions must
    follow the order of the first reference to each, and every one must be referenced."""
    text = page.read_text()
    defs = re.findall(r"^\[\^([^\]]+)\]:", text, flags=re.M)
    body = re.sub(r"^\[\^[^\]]+\]:.*$", "", text, flags=re.M)
    first: dict[str, int] = {}
    for m in re.finditer(r"\[\^([^\]]+)\]", body):
        first.setdefault(m.group(1), m.start())
    unused = [d for d in defs if d not in first]
    assert not unused, f"{page.name}: footnotes defined but never referenced: {unused}"
    assert defs == sorted(defs, key=first.__getitem__), (
        f"{page.name}: footnote definitions out of reading order; expected {sorted(defs, key=first.__getitem__)}")
