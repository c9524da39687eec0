"""Write the API reference pages: one per public module of rspfed.

A public module is one that declares ``__all__`` and whose dotted name has no
component starting with an underscore (``rspfed.transfer._state`` is private;
a package's ``__init__`` counts as the package).  The command line
(``rspfed.cli``) is documented by ``rspfed --help`` and the ``docs/*-cli.md``
pages, not here.  Packages re-export their modules' names: their pages list
its docstring and then its exports, each linked to its home: the page of the
module that defines it, where it is documented once (documenting every
re-export again doubled the build time and gave two entries per object).
``docs/conf.py`` writes the export list at build time, so it follows
``__all__`` without regenerating the pages.

Run ``python docs/api/generate.py`` after adding or removing a module;
``tests/test_docs_build.py`` fails when the pages and the package differ.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

API = Path(__file__).resolve().parent
REPO = API.parent.parent
PACKAGE = REPO / "rspfed"

# Left out of the reference, with the reason.
EXCLUDED_PREFIXES = ("rspfed.cli",)  # the command line: rspfed --help, docs/*-cli.md

# Members that autodoc must skip for now (a docstring that breaks the -W build
# in a module another helper is editing); each with the reason.  Empty when all
# build cleanly.
EXCLUDED_MEMBERS: dict[str, tuple[str, ...]] = {}


def _has_all(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def public_modules() -> list[tuple[str, bool]]:
    """(dotted name, is a package) of every public module, sorted by name."""
    found: list[tuple[str, bool]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        if any(p.startswith("_") for p in parts):
            continue
        name = ".".join(parts)
        if name.startswith(EXCLUDED_PREFIXES) or not _has_all(path):
            continue
        found.append((name, is_package))
    return found


def page(name: str, is_package: bool) -> str:
    """The reStructuredText of one module's page."""
    lines = [name, "=" * len(name), "", f".. automodule:: {name}"]
    excluded = EXCLUDED_MEMBERS.get(name)
    if is_package:
        lines += ["   :no-members:"]
    elif excluded:
        lines += [f"   :exclude-members: {', '.join(excluded)}"]
    return "\n".join(lines) + "\n"


def index(modules: list[tuple[str, bool]]) -> str:
    """The reStructuredText of the reference's index page."""
    head = [
        "API reference",
        "=============",
        "",
        "Built from the docstrings, one page per public module (those that",
        "declare ``__all__``).  A package's page lists what it re-exports; each",
        "object is indexed on the page of the module that defines it.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    return "\n".join(head + [f"   {name}" for name, _ in modules]) + "\n"


def expected_pages() -> dict[str, str]:
    """File name -> contents of every page this script writes."""
    modules = public_modules()
    pages = {f"{name}.rst": page(name, pkg) for name, pkg in modules}
    pages["index.rst"] = index(modules)
    return pages


def main() -> int:
    """Write the pages and remove pages of modules that are gone."""
    pages = expected_pages()
    for old in API.glob("*.rst"):
        if old.name not in pages:
            old.unlink()
    for file_name, text in pages.items():
        target = API / file_name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    print(f"{len(pages) - 1} module pages in {API}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
