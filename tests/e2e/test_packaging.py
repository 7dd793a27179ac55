"""The built wheel: what an installed service (the container's, for one) has to work with."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the one import package the project installs; anything else at the top of the wheel is a stray
PACKAGES = {"market_ledger"}
EXAMPLE_CATALOG = "market_ledger/examples/catalog.json"


def project_files() -> list[str]:
    """The files of the checkout as a clone would have them (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def build_wheel(tmp_path: Path) -> zipfile.ZipFile:
    """The wheel built from a copy of the checkout (so the build leaves nothing behind)."""
    source = tmp_path / "source"
    for name in project_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("market_ledger-*.whl")
    return zipfile.ZipFile(wheel)


def test_given_the_package_data_globs_then_each_names_files_that_exist() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    for package, patterns in package_data.items():
        for pattern in patterns:
            matched = [p for p in (ROOT / package.replace(".", "/")).glob(pattern) if p.is_file()]
            assert matched, f"package-data {package}: {pattern!r} matches no file"


def test_given_a_built_wheel_then_it_carries_the_example_catalog_and_no_stray_folder(
    tmp_path: Path,
) -> None:
    with build_wheel(tmp_path) as wheel:
        names = wheel.namelist()
        catalog = json.loads(wheel.read(EXAMPLE_CATALOG))
    top = {
        name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")
    }
    assert top == PACKAGES, f"unexpected top-level entries: {sorted(top - PACKAGES)}"
    assert len(catalog["data"]["apps"]) == 24
    # the migrations an installed service applies on start
    assert "market_ledger/migrations/alembic.ini" in names
    assert any(name.startswith("market_ledger/migrations/versions/0001_") for name in names)
