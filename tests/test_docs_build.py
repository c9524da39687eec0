"""The documentation site builds with Sphinx, warnings as errors.

Skipped only when the documentation tools (the ``docs`` extra: sphinx,
myst-parser) are not installed.  The build reads every Markdown page under
``docs/`` and imports every public module for the API reference, so a broken
heading, a dangling link between pages or a docstring that is not valid
reStructuredText fails it.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.paths import REPO

DOCS = REPO / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rspfed_docs_api", DOCS / "api" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_pages_match_the_package() -> None:
    """One page per public module, as docs/api/generate.py writes them."""
    expected: dict[str, str] = _generator().expected_pages()
    actual = {p.name: p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.rst")}
    missing = sorted(set(expected) - set(actual))
    stale = sorted(set(actual) - set(expected))
    changed = sorted(n for n in set(expected) & set(actual) if expected[n] != actual[n])
    hint = "run python docs/api/generate.py"
    assert not missing, f"{hint}: missing {missing}"
    assert not stale, f"{hint}: stale {stale}"
    assert not changed, f"{hint}: changed {changed}"


# myst-parser still uses Sphinx APIs that Sphinx 9 deprecates (Python warnings,
# not build warnings): thousands of lines of noise in the test report.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    """``sphinx -W --keep-going -b html docs OUT`` succeeds."""
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    pytest.importorskip("myst_parser", reason="the docs extra is not installed")
    from sphinx.cmd.build import build_main

    out = tmp_path / "html"
    started = time.monotonic()
    status = build_main(
        ["-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(DOCS), str(out)]
    )
    elapsed = time.monotonic() - started
    assert status == 0, "the docs build has warnings (see the captured output above)"
    assert (out / "index.html").is_file()
    assert (out / "api" / "rspfed.transfer.offer.html").is_file()
    print(f"docs built in {elapsed:.1f} s")
