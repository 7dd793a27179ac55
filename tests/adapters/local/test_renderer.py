"""The in-process renderer, and the app_data shapes it shares with chart-repo."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from market_ledger.adapters.chart_repo.app_data import (
    incomplete_reason,
    is_hydration_complete,
    localized_text,
    pending_entry_of,
    simple_info_of,
)
from market_ledger.adapters.local.renderer import render_in_process
from market_ledger.domain.canonical import canonical_json
from tests.support.fakes.market import load_timeline

SOURCE = "local"
USER = "alice"


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "affine",
        "appID": "affine",
        "name": "affine",
        "version": "1.0.0",
        "title": {"en-US": "AFFiNE"},
        "description": {"en-US": "Open-source alternative for Notion."},
        "icon": "https://file.test/affine.png",
        "categories": ["Productivity"],
        "supportArch": ["amd64", "arm64"],
        "apiVersion": None,
        "entrances": [{"name": "affine", "port": 3010}],
    }
    base.update(fields)
    return base


def test_the_same_input_renders_byte_for_byte_the_same_and_is_not_mutated() -> None:
    source = entry()
    before = copy.deepcopy(source)
    first = render_in_process(source, SOURCE, USER)
    second = render_in_process(copy.deepcopy(source), SOURCE, USER)
    assert canonical_json(first) == canonical_json(second)
    assert source == before


def test_a_render_has_chart_repos_shape_and_is_complete() -> None:
    app_data = render_in_process(
        pending_entry_of(entry()), SOURCE, USER, analyzed_at="2026-01-01T00:00:00Z"
    )
    assert set(app_data) == {
        "type",
        "timestamp",
        "version",
        "raw_data",
        "raw_package",
        "rendered_package",
        "values",
        "app_info",
        "app_simple_info",
    }
    assert app_data["type"] == "app-info-latest"
    assert app_data["version"] == "1.0.0"
    assert app_data["raw_package"] and app_data["rendered_package"]
    assert app_data["app_info"]["app_entry"] == app_data["raw_data"]
    assert app_data["app_info"]["image_analysis"] == {
        "app_id": "affine",
        "user_id": USER,
        "source_id": SOURCE,
        "analyzed_at": "2026-01-01T00:00:00Z",
        "total_images": 0,
        "images": {},
    }
    assert is_hydration_complete(app_data)


def test_without_analyzed_at_the_render_carries_no_time_at_all() -> None:
    analysis = render_in_process(entry(), SOURCE, USER)["app_info"]["image_analysis"]
    assert "analyzed_at" not in analysis


def test_a_bare_entry_and_its_pending_wrapper_render_the_same() -> None:
    assert render_in_process(entry(), SOURCE, USER) == render_in_process(
        pending_entry_of(entry()), SOURCE, USER
    )


def test_each_user_and_source_gets_its_own_packages() -> None:
    alice = render_in_process(entry(), "upload", "alice")
    bob = render_in_process(entry(), "upload", "bob")
    assert alice["raw_package"] == bob["raw_package"]
    assert alice["rendered_package"] != bob["rendered_package"]


def test_detail_fields_the_reference_dropped_survive_the_render() -> None:
    app_data = render_in_process(
        entry(ports=[{"port": 80}], envs=[{"envName": "TZ"}]), SOURCE, USER
    )
    assert app_data["raw_data"]["ports"] == [{"port": 80}]
    assert app_data["raw_data"]["envs"] == [{"envName": "TZ"}]


def test_simple_info_is_derived_from_the_entry() -> None:
    info = render_in_process(entry(), SOURCE, USER)["app_simple_info"]
    assert info == {
        "app_id": "affine",
        "app_name": "affine",
        "app_icon": "https://file.test/affine.png",
        "app_description": {"en-US": "Open-source alternative for Notion."},
        "app_version": "1.0.0",
        "app_title": {"en-US": "AFFiNE"},
        "categories": ["Productivity"],
        "support_arch": ["amd64", "arm64"],
    }


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ({"zh": "中文", "en": "English", "de": "Deutsch"}, "English"),
        ({"zh": "中文", "zh-CN": "简体"}, "简体"),
        ({"zh": "中文", "de": "Deutsch"}, "中文"),
        ({"fr": "", "de": "Deutsch", "da": ""}, "Deutsch"),
        ({"en-US": "  ", "en": "English"}, "English"),
    ],
)
def test_a_missing_name_comes_from_the_title_in_language_order(
    title: dict[str, str], name: str
) -> None:
    source = {"id": "x1", "version": "1", "title": title}
    info = simple_info_of({"raw_data": source, "app_info": {"app_entry": source}})
    assert info is not None
    assert info["app_name"] == name


def test_localized_text_falls_back_en_us_en_zh_cn_zh_then_any() -> None:
    assert localized_text({"zh": "z", "zh-CN": "zc", "en": "e", "en-US": "eu"}) == "eu"
    assert localized_text({"zh": "z", "zh-CN": "zc", "en": "e"}) == "e"
    assert localized_text({"zh": "z", "zh-CN": "zc"}) == "zc"
    assert localized_text({"zh": "z", "ja": "j"}) == "z"
    assert localized_text({"ja": "j"}) == "j"
    assert localized_text("plain") == "plain"
    assert localized_text(None) == ""


def test_simple_info_falls_back_from_raw_data_to_the_app_entry_and_the_pending_version() -> None:
    info = simple_info_of(
        {
            "version": "2.0.0",
            "raw_data": {"title": {}},
            "app_info": {
                "app_entry": {
                    "id": "e1",
                    "name": "from-entry",
                    "icon": "i.png",
                    "categories": ["AI"],
                    "supportArch": ["arm64"],
                }
            },
        }
    )
    assert info is not None
    assert (info["app_id"], info["app_name"], info["app_icon"]) == ("e1", "from-entry", "i.png")
    assert info["app_version"] == "2.0.0"
    assert (info["categories"], info["support_arch"]) == (["AI"], ["arm64"])


def test_simple_info_is_none_without_id_or_name() -> None:
    assert simple_info_of({"raw_data": {"version": "1"}}) is None


def test_the_pending_wrapper_fills_ids_and_turns_texts_into_language_maps() -> None:
    pending = pending_entry_of(
        {
            "app_id": "n1",
            "title": "Notes",
            "description": "Take notes",
            "version": "0.1",
            "createTime": 17,
        }
    )
    raw = pending["raw_data"]
    assert (raw["id"], raw["appID"], raw["name"]) == ("n1", "n1", "Notes")
    assert raw["title"] == {"en-US": "Notes"}
    assert raw["description"] == {"en-US": "Take notes"}
    assert raw["createTime"] == 17  # the catalog's number, not the sync time
    assert raw["metadata"] == {"validation_status": "validated"}
    assert pending["type"] == "app-info-latest-pending"
    assert pending["timestamp"] == 0
    assert pending["app_info"] == {"app_entry": raw, "image_analysis": None}
    assert incomplete_reason(pending) == "raw_package is empty"


def test_a_pending_wrapper_needs_some_identity() -> None:
    with pytest.raises(ValueError, match="needs an id"):
        pending_entry_of({"version": "1.0"})


def complete() -> dict[str, Any]:
    return render_in_process(entry(), SOURCE, USER)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(raw_package=""), "raw_package is empty"),
        (lambda d: d.pop("rendered_package"), "rendered_package is empty"),
        (lambda d: d.update(app_info=None), "app_info is missing"),
        (lambda d: d["app_info"].update(image_analysis=None), "app_info.image_analysis is missing"),
        (
            lambda d: d["app_info"]["image_analysis"].update(total_images=0, images=None),
            "app_info.image_analysis has no images and total_images is 0",
        ),
        (lambda d: d.pop("raw_data"), "raw_data is missing"),
    ],
)
def test_the_hydration_complete_predicate_names_what_is_missing(change: Any, reason: str) -> None:
    app_data = complete()
    change(app_data)
    assert incomplete_reason(app_data) == reason


def test_images_counted_but_not_listed_still_count_as_complete() -> None:
    app_data = complete()
    app_data["app_info"]["image_analysis"].update(total_images=2, images=None)
    assert is_hydration_complete(app_data)


def test_every_app_of_the_real_catalog_renders_completely() -> None:
    entries = [e for change_set in load_timeline() for e in change_set["upserts"].values()]
    assert entries
    for catalog_entry in entries:
        app_data = render_in_process(catalog_entry, "market.olares", USER)
        assert is_hydration_complete(app_data), catalog_entry["id"]
        assert app_data["app_simple_info"]["app_id"] == catalog_entry["id"]
