"""The block contract: every block on a page is included, registered, and run or recorded."""

import textwrap

import pytest

from book import registry
from book.contract import inventory, shell_line_problem, unused_entries, unused_snippets
from book.render import Renderer


def test_pages_keep_the_block_contract(inventory):
    assert not inventory.problems, "\n".join(inventory.problems)


def test_every_snippet_file_is_used_by_a_page(inventory, entries):
    problems = unused_snippets(inventory, entries)
    assert not problems, "\n".join(problems)


def test_every_registered_block_is_on_a_page(inventory, entries):
    problems = unused_entries(inventory, entries)
    assert not problems, "\n".join(problems)


def test_every_page_has_blocks_and_each_block_a_reference(inventory):
    assert inventory.blocks, "no blocks found: is the expansion broken?"
    assert all(b.ref or b.generated for b in inventory.blocks)


@pytest.mark.parametrize(
    "line, problem",
    [
        ("python snippets/ch01/allreduce.py", None),
        ("torchrun --nproc-per-node 2 snippets/ch01/allreduce.py --backend gloo", None),
        ('python -c "import torch; print(torch.__version__)"', None),
        ("NCCL_DEBUG=INFO torchrun --nproc-per-node 2 x.py", None),
        ("python a.py | tee runs/log.txt", None),
        ("$ python a.py", "prompt"),
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
