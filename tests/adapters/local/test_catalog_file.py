"""A market source read from a ``file://`` URL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from market_ledger.adapters.local.catalog_file import LocalCatalogSource, path_of_file_url
from market_ledger.service.ports import CatalogSource, RemoteError
from market_ledger.service.remote_values import MarketSnapshot

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())


def document(apps: Any = None, **data: Any) -> dict[str, Any]:
    if apps is None:
        apps = {
            "notes": {
                "id": "notes",
                "name": "notes",
                "version": "0.1.0",
                "title": {"en-US": "Notes"},
            },
            "clock": {"id": "clock", "name": "clock", "version": "2.0.0"},
        }
    return {"version": "local-1", "data": {"apps": apps, **data}}


def write(path: Path, content: Any) -> Path:
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(url: str) -> MarketSnapshot:
    return run(lambda: LocalCatalogSource(url).fetch_snapshot())


def test_given_a_catalog_file_then_the_snapshot_offers_its_apps_and_hashes_the_bytes(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "market.json", document(tags={"ai": {"name": "AI"}}))
    result = snapshot(path.as_uri())
    assert set(result.apps) == {"notes", "clock"}
    assert result.extras["tags"] == {"ai": {"name": "AI"}}
    assert result.catalog_version == "local-1"
    assert result.remote_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.hash_agrees and result.complete
    assert result.source_url == path.as_uri()
    assert set(result.manifests()) == {"notes", "clock"}


def test_given_a_folder_then_its_catalog_json_is_read(tmp_path: Path) -> None:
    write(tmp_path / "catalog.json", document())
    assert set(snapshot(tmp_path.as_uri()).apps) == {"notes", "clock"}


def test_the_hash_changes_with_any_edit_and_the_files_own_hash_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "catalog.json", {**document(), "hash": "pinned"})
    source = LocalCatalogSource(path.as_uri())
    before = run(lambda: source.fetch_hash(""))
    assert before != "pinned"
    assert run(lambda: source.probe_hash("")) == before
    write(path, {**document(), "hash": "pinned", "version": "local-2"})
    after = run(lambda: source.fetch_hash(""))
    assert after != before
    assert run(lambda: source.fetch_snapshot("")).remote_hash == after


def test_a_local_source_serves_wherever_a_catalog_reader_is_expected(tmp_path: Path) -> None:
    async def offered(reader: CatalogSource) -> set[str]:
        probed = await reader.probe_hash("1.12.3")
        result = await reader.fetch_snapshot("1.12.3")
        assert probed == result.remote_hash
        return set(result.apps)

    path = write(tmp_path / "catalog.json", document())
    assert run(lambda: offered(LocalCatalogSource(path.as_uri()))) == {"notes", "clock"}


def test_given_no_file_then_the_probe_says_none_and_the_fetch_names_the_path(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "gone.json"
    source = LocalCatalogSource(missing.as_uri())
    assert run(lambda: source.probe_hash("")) is None
    with pytest.raises(RemoteError) as caught:
        run(lambda: source.fetch_snapshot(""))
    assert caught.value.reason == f"no catalog file at {missing}"
    assert caught.value.service == "local catalog"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("{not json", "is not JSON: {not json"),
        (
            document(apps=[{"id": "a", "version": "1"}]),
            "data.apps must be an object keyed by app id, got array",
        ),
        (document(apps={}), "the catalog has no apps"),
        ({"apps": {"a": {"id": "a", "version": "1"}}}, "wrong shape: data is missing"),
        (document(recommends=["x"]), "data.recommends must be an object, got array"),
    ],
    ids=["empty", "blank", "not-json", "apps-array", "no-apps", "no-data", "recommends-array"],
)
def test_given_a_bad_file_then_it_is_a_clear_error_never_an_empty_catalog(
    tmp_path: Path, content: Any, reason: str
) -> None:
    path = write(tmp_path / "catalog.json", content)
    with pytest.raises(RemoteError) as caught:
        snapshot(path.as_uri())
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://market.test/catalog.json", "not a file:// URL"),
        ("file://server/share/catalog.json", "must name a local path"),
        ("file://", "names no catalog file or folder"),
    ],
)
def test_urls_that_name_no_local_file_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        path_of_file_url(url)


def test_file_urls_may_name_localhost_and_escape_spaces(tmp_path: Path) -> None:
    folder = tmp_path / "my market"
    folder.mkdir()
    write(folder / "catalog.json", document())
    url = "file://localhost" + folder.as_uri().removeprefix("file://")
    assert path_of_file_url(url) == folder
    assert set(snapshot(url).apps) == {"notes", "clock"}
