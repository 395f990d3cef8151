"""Every shell command and Python snippet of README.md and of the documentation pages (``docs/``, in
the order of the site's table of contents) runs, in one working folder, at small sizes
(:mod:`snippets`): neither the README nor a page of the user guide can drift from the code. Pages
build on earlier ones as a reader would (the inverse page samples the prior the diffusion page
trained), and a command met again (the README's quick start in Getting started) runs once."""

from __future__ import annotations

import re
from pathlib import Path

from snippets import ROOT, page_blocks, prepare, rst_languages, run_blocks, shell_commands

DOCS = ROOT / "docs"
#: Pages generated when the site is built (API reference, gallery) or holding no page of their own.
GENERATED = ("api", "gallery", "_ext", "sg_execution_times.rst")
#: Code-block languages of the pages that are not commands or Python: none today.
NOT_RUN: tuple[str, ...] = ()


def toctree_order(page: Path) -> list[Path]:
    """``page`` and the pages its ``toctree`` directives name, depth first, in the order of the site."""
    text = page.read_text() if page.suffix == ".rst" else ""
    pages = [page]
    for tree in re.finditer(r"^\.\. toctree::\n((?:[ \t]+.*\n|\n)*)", text, re.M):
        for entry in tree[1].splitlines():
            entry = entry.strip()
            if not entry or entry.startswith(":"):
                continue
            for suffix in (".rst", ".md"):
                child = page.parent / f"{entry}{suffix}"
                if child.exists():
                    pages += toctree_order(child)
    return pages


def hand_written(page: Path) -> bool:
    return page.suffix in (".rst", ".md") and not any(part in GENERATED for part in page.relative_to(DOCS).parts)


PAGES = [page for page in toctree_order(DOCS / "index.rst") if hand_written(page)]
README = ROOT / "README.md"


def test_every_page_is_in_the_order_and_every_code_block_is_run():
    assert set(PAGES) == {page for page in DOCS.rglob("*") if hand_written(page)}, (
        "a page outside the table of contents would not be tested"
    )
    blocks = [block for page in PAGES for block in page_blocks(page)]
    assert sum(block.language == "python" for block in blocks) >= 7
    assert sum(block.language == "bash" for block in blocks) >= 15
    for page in PAGES:
        if page.suffix == ".rst":
            unknown = [language for language in rst_languages(page) if language not in ("bash", "python", *NOT_RUN)]
            assert not unknown, f"{page.name}: code blocks the tests do not run: {unknown}"
            directives = len(rst_languages(page))
            assert len(page_blocks(page)) == directives, f"{page.name}: a code block the extractor did not read"
    skipped = sorted(s for block in blocks for s in block.skip)
    assert skipped == sorted(["make test", "make test", "pip install", "--nnodes"]), "every skip has its reason"


def test_every_readme_and_docs_command_and_snippet_runs(tmp_path, monkeypatch):
    prepare(tmp_path, monkeypatch)
    timings = run_blocks([block for page in [README, *PAGES] for block in page_blocks(page)], tmp_path)
    ran = {what.split(": ", 1)[1].split("#")[0].strip() for _, what in timings if what.startswith("README.md")}
    readme = {c.split("#")[0].strip() for b in page_blocks(README) for c in shell_commands(b.code, b.skip)}
    assert ran == readme, "every README command ran (before any page's)"
    # what the commands promise: the README's demo and quick start, then the pages'
    assert (tmp_path / "runs/demo/report/report.html").exists()
    assert (tmp_path / "runs/darcy_fno/report/report.html").exists()
    assert "darcy_test_128" in (tmp_path / "runs/darcy_fno/metrics.json").read_text()
    assert (tmp_path / "runs/darcy_fno/report/report.md").exists()
    assert "model:\n  name: unet" in (tmp_path / "darcy_unet.yaml").read_text()
    assert (tmp_path / "data/darcy_ranks.h5").exists() and (tmp_path / "data/darcy_machines.h5.shards").is_dir()
    assert (tmp_path / "runs/darcy_prior/inverse/posterior.npz").exists()
    assert (tmp_path / "runs/darcy_prior/daps/posterior.npz").exists()
    assert (tmp_path / "runs/darcy_gino/metrics.json").exists()
    assert (tmp_path / "runs/ks_refiner/rollout.json").exists()
    assert (tmp_path / "runs/swe_sfno/report/report.html").exists()
