"""Rules of the code base that a reviewer would otherwise have to remember.

- no module is longer than 400 lines, so each stays one concept a newcomer can read whole;
- no test imports inside its function body: a test's dependencies are at its top;
- comments and docstrings cite only what is in the repository (``docs/``), never the
  numbered sections of documents a clone does not have.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("market_ledger", "tests", "bench")
MAX_LINES = 400
#: a numbered section of an outside document ("C §3a.2"), or the design notes by name
OUTSIDE_CITATION = re.compile(r"§|\bDESIGN\.md\b|\breference [A-F]\b")


def python_modules() -> list[Path]:
    return sorted(
        path
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*.py")
        if "versions" not in path.parts
    )


def test_given_the_code_base_then_no_module_is_longer_than_400_lines() -> None:
    modules = python_modules()
    assert len(modules) > 100, "the scan found too few modules: it is broken"
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_given_the_tests_then_none_imports_inside_a_function_body() -> None:
    inside: list[str] = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    inside.append(f"{path.relative_to(ROOT)}:{node.lineno} in {function.name}")
    assert not inside, "imports inside function bodies:\n" + "\n".join(sorted(set(inside)))


def test_given_the_code_base_then_no_comment_cites_a_document_outside_the_repository() -> None:
    cited = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in python_modules()
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE_CITATION.search(line)
    ]
    assert not cited, "citations of documents outside the repository:\n" + "\n".join(cited)
