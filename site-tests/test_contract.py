"""The block contract: every block on a page is included, registered, and run or recorded."""

import shutil
import textwrap

import pytest

from book import registry
from book.contract import inventory, shell_line_problem, unused_entries, unused_snippets
from book.pages import DOCS
from book.registry import SNIPPETS
from book.render import Renderer


def test_pages_keep_the_block_contract(inventory):
    assert not inventory.problems, "\n".join(inventory.problems)


def test_every_snippet_file_is_used_by_a_page(inventory, entries, figures):
    problems = unused_snippets(inventory, entries, figures=figures)
    assert not problems, "\n".join(problems)


def test_every_registered_block_is_on_a_page(inventory, entries):
    problems = unused_entries(inventory, entries)
    assert not problems, "\n".join(problems)


def test_every_chapter_page_has_blocks_and_each_block_a_reference(inventory):
    chapters = sorted(p.name for p in DOCS.glob("ch[0-9][0-9].md"))
    assert chapters, "no chapter pages found"
    with_blocks = {b.page for b in inventory.blocks if b.ref}
    empty = [c for c in chapters if c not in with_blocks]
    assert not empty, f"chapter pages with no included block (is the expansion broken?): {empty}"
    assert all(b.ref or b.generated for b in inventory.blocks)


@pytest.mark.parametrize(
    "line, problem",
    [
        ("python snippets/ch01/allreduce.py", None),
        ("torchrun --nproc-per-node 2 snippets/ch01/allreduce.py --backend gloo", None),
        ('python -c "import torch; print(torch.__version__)"', None),
        ("NCCL_DEBUG=INFO torchrun --nproc-per-node 2 x.py", None),
        ("python a.py | tee runs/log.txt", None),
        ("python a.py 2>&1 | tee runs/log.txt", None),
        ("python a.py > runs/out.txt 2>&1", None),
        ("python a.py &> runs/out.txt", None),
        ("export HEAD_NODE=node0", None),
        ('bash -c "python a.py"', None),
        ("bash snippets/ch03/two_nodes_local.sh", None),
        ("$ python a.py", "prompt"),
        ("(.venv) $ python a.py", "prompt"),
        ("user@host:~# python a.py", "prompt"),
        ("user@host:~/repo$ python a.py", "prompt"),
        ("[user@host repo]$ python a.py", "prompt"),
        (">>> import torch", "prompt"),
        ('bash -c "python a.py; python b.py"', "bash -c"),
        ("sh -c 'python a.py && python b.py'", "sh -c"),
        ('eval "python a.py || true"', "eval"),
        ("pushd snippets/ch01", "directory"),
        ("popd", "directory"),
        ("FOO=1 cd snippets", "directory"),
        ("cat <<EOF", "here-document"),
        ("# set up first", "prompt"),
        ("python a.py && python b.py", "chains"),
        ("python a.py; python b.py", "chains"),
        ("python a.py || true", "chains"),
        ("python a.py  # runs on CPU", "comment"),
        ("python a.py \\", "continues"),
        ("python serve.py &", "background"),
        ("cd snippets/ch01", "directory"),
    ],
)
def test_shell_line_rules(line, problem):
    found = shell_line_problem(line)
    if problem is None:
        assert found is None, found
    else:
        assert found and problem in found, found


def _planted(tmp_path, body, entries):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "planted.md").write_text(textwrap.dedent(body))
    return inventory(entries, docs_dir=docs, renderer=Renderer(entries))


def test_planted_typed_block_is_caught(tmp_path, entries):
    inv = _planted(tmp_path, '''
        # A page

        ``` { .bash }
        python snippets/ch03/gpt.py
        ```
        ''', entries)
    assert any("typed into the page" in p for p in inv.problems), inv.problems


def test_planted_typed_block_inside_tabs_is_caught(tmp_path, entries):
    inv = _planted(tmp_path, '''
        === "CPU"

            ```python
            print("typed")
            ```
        ''', entries)
    assert any("typed into the page" in p for p in inv.problems), inv.problems


def test_planted_unregistered_block_is_caught(tmp_path, entries):
    inv = _planted(tmp_path, '''
        ``` { .python }
        --8<-- "ch03/data.py"
        ```

        ``` { .python }
        --8<-- "ch03/gpt.py:presets"
        ```
        ''', {k: v for k, v in entries.items() if k != "ch03/gpt.py:presets"})
    assert any("ch03/gpt.py:presets is not registered" in p for p in inv.problems), inv.problems


def test_planted_chained_command_is_caught(tmp_path, entries):
    snippets = tmp_path / "snippets"
    (snippets / "chx").mkdir(parents=True)
    (snippets / "chx" / "c.sh").write_text("python a.py && python b.py\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "p.md").write_text('```bash\n--8<-- "chx/c.sh"\n```\n')
    inv = inventory(entries, docs_dir=docs, snippets_dir=snippets, renderer=Renderer(entries))
    assert any("chains commands" in p for p in inv.problems), inv.problems


def test_planted_indented_code_block_is_caught(tmp_path, entries):
    inv = _planted(tmp_path, '''
        # A page

        Run this:

            python snippets/ch03/gpt.py

        === "CPU"

            Text inside a tab is indented by the tab, not code.

        - A list item

            continues here, which is not code either.
        ''', entries)
    found = [p for p in inv.problems if "indented code block" in p]
    assert found == ["planted.md:6: an indented code block (four spaces): use a fenced block that "
                     "includes a snippet"], inv.problems


@pytest.mark.parametrize("html", ["<pre><code>python a.py</code></pre>", "Run <code>python a.py</code> now."])
def test_planted_raw_html_code_is_caught(tmp_path, entries, html):
    inv = _planted(tmp_path, f"# A page\n\nSome text.\n\n{html}\n\nMentioning `<pre>` in inline code is fine.\n",
                   entries)
    found = [p for p in inv.problems if "raw HTML" in p]
    assert len(found) == 1 and found[0].startswith("planted.md:5: "), inv.problems


def test_planted_unused_file_in_a_package_is_caught(tmp_path, inventory, entries, figures):
    snippets = tmp_path / "snippets"
    shutil.copytree(SNIPPETS, snippets, ignore=shutil.ignore_patterns("__pycache__"))
    assert unused_snippets(inventory, entries, snippets_dir=snippets, figures=figures) == []
    (snippets / "ch02" / "aicluster" / "orphan.py").write_text("X = 1\n")
    assert unused_snippets(inventory, entries, snippets_dir=snippets, figures=figures) == [
        "snippets/ch02/aicluster/orphan.py is used by no page"]


def test_planted_unused_snippet_is_caught(tmp_path, inventory, entries):
    snippets = tmp_path / "snippets"
    (snippets / "ch99").mkdir(parents=True)
    (snippets / "ch99" / "orphan.py").write_text("print('no page shows me')\n")
    problems = unused_snippets(inventory, entries, snippets_dir=snippets)
    assert problems == ["snippets/ch99/orphan.py is used by no page"]


def test_registry_rejects_a_runnable_block_without_expectation(tmp_path):
    (tmp_path / "x.yml").write_text("ch03/commands.sh:x:\n  tier: cpu\n")
    with pytest.raises(registry.RegistryError, match="needs an expect"):
        registry.load(tmp_path)


def test_registry_rejects_an_unknown_tier(tmp_path):
    (tmp_path / "x.yml").write_text("a.sh:x:\n  tier: tpu\n  expect: {exit: 0}\n")
    with pytest.raises(registry.RegistryError, match="unknown tier"):
        registry.load(tmp_path)
