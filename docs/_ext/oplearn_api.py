"""The API reference, written when the build starts by walking the ``oplearn`` package.

Every public module (no component starting with ``_``) gets a page ``api/<module>.rst`` that
documents the public names it defines: classes and functions whose ``def``/``class`` is in the
module, and module-level variables it assigns. A package's ``__all__`` names defined elsewhere
are listed as links to where they are documented. Nothing is written by hand, so a new module
or function appears in the reference without anyone remembering to add it.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import oplearn

#: Longest variable value shown in the reference; longer ones (registries) show their docs only.
MAX_VALUE = 80


def public_modules() -> list[str]:
    """Dotted names of every public module of oplearn, the package itself first."""
    names = ["oplearn"]
    for info in pkgutil.walk_packages(oplearn.__path__, prefix="oplearn."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def defined_names(module_name: str) -> tuple[list[str], list[str]]:
    """``(classes and functions, variables)`` defined at the top level of a module, public only,
    in source order."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text())
    objects, variables = [], []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            objects.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            variables += [t.id for t in targets if isinstance(t, ast.Name)]
    public = lambda names: list(dict.fromkeys(n for n in names if not n.startswith("_") and hasattr(module, n)))
    return public(objects), [n for n in public(variables) if n != "__all__"]


def imported_from(module_name: str, name: str) -> str | None:
    """The module a package's ``from oplearn.x import name`` takes ``name`` from (for data, which
    carries no ``__module__``), or ``None``."""
    tree = ast.parse(Path(importlib.import_module(module_name).__file__).read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and any(a.name == name for a in node.names):
            return node.module
    return None


def reexported(module_name: str) -> list[str]:
    """Canonical dotted names of the ``__all__`` entries a package imports from its modules."""
    module = importlib.import_module(module_name)
    out = []
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        home = getattr(obj, "__module__", None) or imported_from(module_name, name) or module_name
        if home != module_name and home.startswith("oplearn"):
            out.append(f"{home}.{getattr(obj, '__qualname__', name)}")
    return out


def module_page(module_name: str) -> str:
    module = importlib.import_module(module_name)
    objects, variables = defined_names(module_name)
    title = f"``{module_name}``"
    members = f"   :members: {', '.join(objects)}" if objects else "   :no-members:"
    lines = [title, "=" * len(title), "", f".. automodule:: {module_name}", members, ""]
    for name in variables:
        lines += [f".. autodata:: {module_name}.{name}"]
        if len(repr(getattr(module, name))) > MAX_VALUE:
            lines += ["   :no-value:"]
        lines += [""]
    exported = reexported(module_name)
    if exported:
        lines += ["Also importable from here:", ""] + [f"- :py:obj:`~{name}`" for name in exported] + [""]
    children = [m for m in public_modules() if m.rpartition(".")[0] == module_name]
    if children:
        lines += ["Modules:", "", ".. toctree::", "   :maxdepth: 1", ""] + [f"   {m}" for m in children] + [""]
    return "\n".join(lines)


def write_reference(app) -> None:
    """Write ``api/*.rst`` (only files whose text changed, so incremental builds stay incremental)."""
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    wanted = {}
    for name in public_modules():
        wanted[f"{name}.rst"] = module_page(name)
    wanted["index.rst"] = "\n".join(
        [
            "API reference",
            "=============",
            "",
            "Generated from the docstrings of every public module of oplearn.",
            "",
            ".. toctree::",
            "   :maxdepth: 1",
            "",
            "   oplearn",
            "",
        ]
    )
    for stale in set(p.name for p in out.glob("*.rst")) - set(wanted):
        (out / stale).unlink()
    for filename, text in wanted.items():
        path = out / filename
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def drop_borrowed_docstring(app, what, name, obj, options, lines) -> None:
    """A variable without a ``#:`` comment or docstring of its own shows no text (autodoc would
    show the docstring of its value's type: ``dict``, a torch function...)."""
    if callable(obj) and not getattr(obj, "__module__", "oplearn").startswith("oplearn"):
        lines[:] = []  # a function of another package stored as a class attribute
        return
    if what not in ("data", "attribute"):
        return
    from sphinx.pycode import ModuleAnalyzer

    path = name.split(".")
    for i in range(len(path) - 1, 0, -1):
        module = ".".join(path[:i])
        try:
            docs = ModuleAnalyzer.for_module(module).find_attr_docs()
        except Exception:  # not a module: try a shorter prefix
            continue
        if (".".join(path[i:-1]), path[-1]) not in docs:
            lines[:] = []
        return


def _lookup(path: str):
    """The object a dotted path names, importing its longest module prefix; ``None`` if none."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except (ImportError, ValueError):  # not a module, or not a name at all
            continue
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


def _canonical(obj) -> str | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module is None or qualname is None:
        func = getattr(obj, "__func__", None) or getattr(obj, "fget", None)  # methods, properties
        return _canonical(func) if func is not None else None
    return f"{module}.{qualname}"


def _inherited(path: str, documented) -> str | None:
    """``Class.attribute`` as documented on the first class of the MRO that documents it."""
    owner, _, attribute = path.rpartition(".")
    cls = _lookup(owner)
    for base in getattr(cls, "__mro__", ()):
        name = f"{_canonical(base)}.{attribute}"
        if name in documented:
            return name
    return None


def resolve_alias(app, env, node, contnode):
    """Resolve a Python reference that names an object where it is imported or inherited
    (``oplearn.models.FNO``, ``FNO`` inside a module that imports it, a method of a base class)
    to where it is documented; unresolved references stay errors."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module:
        candidates += [f"{module}.{cls}.{target}" if cls else None, f"{module}.{target}"]
    domain = env.get_domain("py")
    for candidate in filter(None, candidates):
        if not candidate.startswith("oplearn"):
            continue
        name = _canonical(_lookup(candidate))
        if name not in domain.objects:
            name = _inherited(candidate, domain.objects)
        if name and name != candidate and name in domain.objects:
            node = node.deepcopy()
            node["reftarget"], node["refspecific"] = name, False
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], name, node, contnode)
    return None


def setup(app):
    app.connect("builder-inited", write_reference)
    app.connect("missing-reference", resolve_alias)
    app.connect("autodoc-process-docstring", drop_borrowed_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
