"""Sphinx configuration of rspfed's documentation site.

The Markdown pages under ``docs/`` are read by myst-parser; the API
reference (``docs/api/``) is built from the docstrings by autodoc, one page
per public module (``python docs/api/generate.py`` writes the pages; a test
checks that they match the package).  Build, warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

project = "rspfed"
author = "rspfed developers"
copyright = "rspfed developers"
release = importlib.import_module("rspfed").__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "api/generate.py"]

# The Markdown pages: GitHub-style heading anchors (so `[x](pairing.md#7-state-machine)`
# links resolve), `$` left alone (prices and shell prompts), tables and code as written.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

# autodoc: members in `__all__` order as the source lists them; type hints in
# the description (signatures stay readable), documented as written.
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = False
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Type hints are strings (``from __future__ import annotations``) and many
# names exist in several modules (``DeviceClass`` in the token, the ASN.1
# schemas and the network; ``Hello`` as message and as schema): autodoc cannot
# tell which one a bare name in a hint means and Sphinx would warn "more than
# one target found".  Those links are left unresolved; every other warning
# fails the build.
suppress_warnings = ["ref.python"]

# Module docstrings shown as a literal block instead of being parsed (an escape
# hatch for a docstring that is not valid reStructuredText yet; keep it empty).
LITERAL_MODULE_DOCSTRINGS: frozenset[str] = frozenset()

html_theme = "alabaster"
html_title = "rspfed"
html_static_path: list[str] = []
# A short sidebar: the whole tree on every one of ~170 pages made the build
# several times slower; the index pages carry the tree.
html_sidebars = {"**": ["about.html", "relations.html", "searchbox.html"]}

# Pygments has no lexer for ASN.1 or ABNF: show those blocks as plain text
# rather than warning about them.
_PLAIN_LANGUAGES = ("asn1", "asn", "abnf")


def _literal_module_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Show the docstring of a module in LITERAL_MODULE_DOCSTRINGS as a literal block."""
    if what == "module" and name in LITERAL_MODULE_DOCSTRINGS and lines:
        text = ["::", ""] + ["    " + line if line else "" for line in lines]
        lines[:] = text


def _package_exports(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """After a package's docstring, list its ``__all__``, each name linked to the
    page of the module that defines it (packages are documented ``:no-members:``)."""
    if what != "module" or not hasattr(obj, "__path__") or not hasattr(obj, "__all__"):
        return
    documented = {p.stem for p in (DOCS / "api").glob("*.rst")}
    lines += ["", ".. rubric:: Exports", ""]
    for export in obj.__all__:
        home = getattr(getattr(obj, export, None), "__module__", None)
        if isinstance(home, str) and home != name and home in documented:
            lines.append(f"* :py:obj:`~{home}.{export}` (:py:mod:`{home}`)")
        else:
            lines.append(f"* ``{export}``")
    lines.append("")


def setup(app: Any) -> None:
    """Register the plain-text lexers and the temporary docstring hook."""
    text_lexer = importlib.import_module("pygments.lexers.special").TextLexer
    for name in _PLAIN_LANGUAGES:
        app.add_lexer(name, text_lexer)
    app.connect("autodoc-process-docstring", _literal_module_docstring)
    app.connect("autodoc-process-docstring", _package_exports)
