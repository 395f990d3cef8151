"""Sphinx configuration of the oplearn site, built by ``make docs`` into ``site/`` in strict mode.

Sphinx rather than MkDocs: the docstrings are numpy-style reStructuredText with ``:math:`` and
cross-references (napoleon and autodoc read them as written), and sphinx-gallery executes the
example scripts at build time, so a broken example breaks the build. The API reference and the
tables of PDE families and models are generated from the package itself when the build starts
(``_ext/``), so they cannot go stale.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # examples import helpers from the repository when run by the gallery
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import oplearn  # noqa: E402

project = "oplearn"
author = "the oplearn developers"
copyright = "the oplearn developers"
release = version = oplearn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax's files copied into _static/mathjax: equations render without a network
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "oplearn_api",
    "oplearn_tables",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "gallery/*.ipynb", "gallery/*.py", "gallery/*.zip", "gallery/*.json"]
html_theme = "furo"
html_title = f"oplearn {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
# the site loads nothing from the network: MathJax from _static (sphinx-mathjax-offline ships MathJax 3's
# files and copies them there; this is the path it sets, spelled out here) and no gallery page of CDN tables
mathjax_path = "mathjax/tex-chtml.js"

# strict: every reference must resolve; only the names of other packages cannot (no network at build time)
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(torch|np|numpy|scipy|h5py|pydantic|pydantic_core|matplotlib|argparse|pathlib|typing|typing_extensions"
        r"|collections|types|abc|enum|io|os|contextlib|datetime|logging|dataclasses|functools|json|random"
        r"|threading|concurrent|tqdm|yaml|skfem|meshio|ot|sklearn|annotated_types)(\..*)?",
    ),
    (
        r"py:.*",
        r"(Tensor|Path|Any|Callable|Iterator|Iterable|Sequence|Mapping|Generator|ClassVar|Literal|Self|Module"
        r"|BaseModel|ndarray|ArrayLike|Parameter|Dataset|DataLoader|Optimizer|LRScheduler|Figure|Axes|Annotated"
        r"|optional|default|callable|array_like|float|int|str|bool|dict|list|tuple|None|object|type|Field"
        r"|FieldInfo|ConfigDict|PathLike|TextIO|BinaryIO|Namespace|ModuleType|Generic|TypeVar|T|ModelT)",
    ),
    (r"py:.*", r".*\.(T|ModelT|Self)"),
    (r"py:.*", r"nn\..*"),
    # private names (bases of public classes) are not documented, by design
    (r"py:.*", r"(.*\.)?_[A-Za-z]\w*"),
    # napoleon reads the prose after "name :" in Parameters/Attributes as a type: not a name, not a reference
    (r"py:class", r".*[^\w.].*"),
    (r"py:class", r"[a-z_][a-z0-9_]*"),
]

autodoc_default_options = {"undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # Attributes sections as fields: autodoc documents the attributes themselves
napoleon_custom_sections = ["Shapes", "Terms"]

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "gallery",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "min_reported_time": 1,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),
    "write_computation_times": False,  # its pages load tables from a CDN; each example shows its own time
}

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
# "more than one target" for an instance attribute named in an Attributes section (``:ivar grid:``)
# that other classes document: the name is linked to one of them, never left unresolved.
suppress_warnings = ["myst.header", "ref.python"]
