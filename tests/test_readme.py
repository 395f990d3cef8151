"""The README is the short newcomer path: what oplearn is, the two commands, a quick start, and a
link to the user-guide page of every capability. Its commands run first in
``test_docs_snippets.py``, then the documentation pages' in the same folder (:mod:`snippets`)."""

from __future__ import annotations

from snippets import ROOT, page_blocks

README = ROOT / "README.md"


def test_readme_blocks_are_found_and_skips_are_explicit():
    blocks = page_blocks(README)
    commands = [line for block in blocks if block.language == "bash" for line in block.code.splitlines()]
    for step in ("make demo", "oplearn generate", "oplearn train", "oplearn evaluate", "oplearn report"):
        assert any(line.startswith(step) for line in commands), f"the README's {step} is not found"
    skipped = [s for block in blocks for s in block.skip]
    assert sorted(skipped) == sorted(["make test", "pip install"]), "every skip has its reason in the README"


def test_readme_links_to_every_user_guide_page():
    text = README.read_text()
    for page in sorted((ROOT / "docs" / "guide").glob("*.rst")):
        if page.stem != "index":
            assert f"(docs/guide/{page.name})" in text, f"the README does not link to {page.name}"
            assert (ROOT / "docs" / "guide" / page.name).exists()
