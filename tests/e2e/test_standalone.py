"""A clone of the repository stands on its own: its data is tracked, nothing reads beside it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import tests.fixtures as fixtures

ROOT = Path(__file__).resolve().parents[2]
#: the folder the rule refuses, spelled in pieces so that this file does not trip the rule
SHARED = "sha" + "red"


def lint_standalone(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "lint-standalone"], cwd=folder, capture_output=True, text=True, timeout=60
    )


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, timeout=60)


def project_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A git checkout holding the project's Makefile and ``files`` (added to the index)."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy2(ROOT / "Makefile", folder / "Makefile")
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    git(folder, "init", "-q")
    git(folder, "add", ".")
    return folder


def test_given_the_project_when_lint_standalone_runs_then_no_file_refers_to_shared() -> None:
    done = lint_standalone(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_given_a_file_that_reads_shared_when_lint_standalone_runs_then_it_fails_naming_it(
    tmp_path: Path,
) -> None:
    folder = project_with(
        tmp_path,
        {
            "tests/data.py": f'DATA = ROOT.parent / "{SHARED}" / "fixtures" / "timeline.jsonl"\n',
            "docs/notes.md": f"The timeline is in `../{SHARED}/fixtures`.\n",
            "ok.py": "shared_entrances = ()  # a field name, not the folder\n",
        },
    )
    done = lint_standalone(folder)
    assert done.returncode != 0
    assert "tests/data.py" in done.stdout and "docs/notes.md" in done.stdout
    assert "ok.py" not in done.stdout


def test_given_a_project_without_such_a_reference_when_lint_standalone_runs_then_it_passes(
    tmp_path: Path,
) -> None:
    folder = project_with(tmp_path, {"ok.py": "shared_entrances = ()\n"})
    done = lint_standalone(folder)
    assert done.returncode == 0, done.stdout + done.stderr


def test_given_the_fixture_files_the_tests_name_then_git_tracks_each_so_a_clone_has_it() -> None:
    names = [fixtures.CATALOG_TIMELINE, fixtures.APP_SERVICE_EXAMPLES, "README.md"]
    listed = subprocess.run(
        ["git", "ls-files", "--", *(f"tests/fixtures/{name}" for name in names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(listed) == sorted(f"tests/fixtures/{name}" for name in names)
    for name in names[:2]:
        assert fixtures.fixture(name).stat().st_size > 0
