"""The chart-repo client's state-changes feed, uploaded apps and image infos.

Integration tests talk to FakeChartRepo over loopback HTTP; a few unit tests use respx.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from market_ledger.adapters.chart_repo.client import (
    ChartRepoClient,
    parse_state_change,
)
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import SkippedChange, StateChange
from tests.adapters.chart_repo.support import FAST, USER, run
from tests.support.fakes import FakeChartRepo, Reply

# --- state changes ------------------------------------------------------------------------------


def feed(repo: FakeChartRepo, after_id: int = 0, limit: int = 1000) -> Any:
    chart_repo = ChartRepoClient(repo.host_port, retry=FAST)
    return run(lambda: chart_repo.state_changes(after_id, limit))


def test_given_uploads_and_image_updates_then_typed_changes_come_in_id_order() -> None:
    with FakeChartRepo() as repo:
        repo.append_upload(USER, "myapp")
        repo.append_image_update("docker.io/jellyfin/jellyfin:10.10.7")
        repo.append_change({"type": "some_future_type"})
        page = feed(repo)
        [request] = repo.requests_to("state-changes")
    assert request.param("after_id") == "0" and request.param("limit") == "1000"
    assert [c.id for c in page.changes] == [1, 2, 3]
    upload, image, unknown = page.changes
    assert upload.type == "app_upload_completed"
    assert upload.app_data is not None and upload.app_data.app_name == "myapp"
    assert upload.app_data.user_id == USER and upload.app_data.source == "upload"
    assert image.image_data is not None
    assert image.image_data.image_name == "docker.io/jellyfin/jellyfin:10.10.7"
    assert unknown.type == "some_future_type"  # passed on; the pipeline decides
    assert upload.timestamp is not None
    assert page.skipped == ()
    assert page.highest_id == 3


def test_given_malformed_changes_then_they_are_skipped_with_reasons_and_the_rest_is_read() -> None:
    with FakeChartRepo() as repo:
        repo.append_change({"id": 1, "type": "app_upload_completed"})
        repo.append_change(
            {"id": 2, "type": "image_info_updated", "image_data": {"image_name": ""}}
        )
        repo.append_change({"id": 3, "type": "app_upload_completed", "app_data": {"app_name": "x"}})
        repo.append_change({"id": 4, "type": 7})
        repo.append_change({"id": 5, "type": "image_info_updated", "timestamp": "not a time"})
        repo.append_change({"id": "six", "type": "image_info_updated"})
        repo.append_upload(USER, "good")  # id 6
        page = feed(repo)
    assert [c.id for c in page.changes] == [6]
    reasons = {s.id: s.reason for s in page.skipped}
    assert reasons[1] == "app_upload_completed: app_data must be an object, got null"
    assert reasons[2] == "image_info_updated: image_data.image_name is empty"
    assert reasons[3] == "app_upload_completed: app_data.source is missing"
    assert reasons[4] == "type must be a string, got number"
    assert reasons[5] == "image_info_updated: timestamp must be an RFC 3339 time, got 'not a time'"
    assert reasons[None] == "id must be an integer, got string"
    assert page.highest_id == 6


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("change", "a change must be an object, got string"),
        ({"type": "x"}, "id must be an integer, got null"),
        ({"id": True, "type": "x"}, "id must be an integer, got boolean"),
    ],
)
def test_unreadable_changes_are_skipped_not_raised(raw: Any, reason: str) -> None:
    parsed = parse_state_change(raw)
    assert isinstance(parsed, SkippedChange)
    assert parsed.reason == reason


def test_a_change_with_a_fractional_timestamp_is_read() -> None:
    parsed = parse_state_change(
        {
            "id": 1042,
            "type": "image_info_updated",
            "timestamp": "2025-06-18T06:30:05.5Z",
            "image_data": {"image_name": "n"},
        }
    )
    assert isinstance(parsed, StateChange)
    assert parsed.timestamp is not None and parsed.timestamp.microsecond == 500000


def test_given_more_changes_than_the_limit_then_the_page_says_there_may_be_more() -> None:
    with FakeChartRepo() as repo:
        for i in range(5):
            repo.append_upload(USER, f"app{i}")
        first = feed(repo, 0, limit=2)
        rest = feed(repo, after_id=first.highest_id, limit=10)
    assert [c.id for c in first.changes] == [1, 2]
    assert first.may_have_more and first.total_available == 5
    assert [c.id for c in rest.changes] == [3, 4, 5]
    assert not rest.may_have_more


def test_given_a_chart_repo_whose_ids_were_reset_then_new_changes_start_again_at_one() -> None:
    with FakeChartRepo() as repo:
        for i in range(3):
            repo.append_upload(USER, f"app{i}")
        repo.reset_ids()
        repo.append_upload(USER, "after-reset")
        stale = feed(repo, after_id=3)
        fresh = feed(repo, after_id=0)
    assert stale.changes == () and stale.total_available == 0
    assert [(c.id, c.app_data.app_name if c.app_data else "") for c in fresh.changes] == [
        (1, "after-reset")
    ]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            Reply.json({"success": False, "message": "database unavailable"}),
            "success=false: database unavailable",
        ),
        (Reply.json({"success": True, "data": None}), "data must be an object, got null"),
        (
            Reply.json({"success": True, "data": {"state_changes": {"1": {}}}}),
            "data.state_changes must be an array, got object",
        ),
        (Reply.garbage(), "body is not JSON"),
        (Reply.error(500), "HTTP 500"),
    ],
    ids=["success-false", "null-data", "changes-object", "garbage", "500"],
)
def test_given_a_failed_feed_answer_then_it_raises_rather_than_reading_as_no_changes(
    reply: Reply, reason: str
) -> None:
    with FakeChartRepo() as repo:
        repo.fail("state-changes", reply)
        with pytest.raises(RemoteError) as caught:
            feed(repo)
    assert reason in caught.value.reason
    assert caught.value.service == "chart-repo"


def test_given_a_feed_500_once_then_the_retry_reads_the_page() -> None:
    with FakeChartRepo() as repo:
        repo.append_upload(USER, "myapp")
        repo.fail("state-changes", Reply.error(500), times=1)
        page = feed(repo)
        assert repo.count("state-changes") == 2
    assert [c.id for c in page.changes] == [1]


# --- uploaded apps and images -------------------------------------------------------------------


def test_given_an_uploaded_app_then_apps_answers_its_entry() -> None:
    with FakeChartRepo() as repo:
        repo.register_upload(USER, "myapp", {"id": "myapp", "name": "myapp", "version": "0.1.2"})
        chart_repo = ChartRepoClient(repo.host_port, retry=FAST)
        app = run(lambda: chart_repo.fetch_uploaded_app(USER, "myapp", "upload"))
        [request] = repo.requests_to("apps")
    assert app["raw_data"]["version"] == "0.1.2"
    assert request.json() == {
        "apps": [{"appid": "myapp", "sourceDataName": "upload"}],
        "userid": USER,
    }


def test_given_no_such_upload_then_fetching_it_raises() -> None:
    with FakeChartRepo() as repo:
        chart_repo = ChartRepoClient(repo.host_port, retry=FAST)
        with pytest.raises(RemoteError, match="no app 'ghost' of 'alice' in source 'upload'"):
            run(lambda: chart_repo.fetch_uploaded_app(USER, "ghost", "upload"))


@respx.mock
def test_given_an_upload_without_raw_data_then_fetching_it_raises() -> None:
    respx.post("http://cr.test/chart-repo/api/v2/apps").mock(
        return_value=httpx.Response(
            200, json={"success": True, "data": {"apps": [{"version": "1"}]}}
        )
    )
    chart_repo = ChartRepoClient("cr.test", retry=FAST)
    with pytest.raises(RemoteError, match=r"data\.apps\[0\]\.raw_data must be an object, got null"):
        run(lambda: chart_repo.fetch_uploaded_app(USER, "myapp", "upload"))


def test_image_names_are_url_escaped_and_the_info_is_returned() -> None:
    name = "docker.io/acme/app:1.0+build&x=1"
    info = {"name": name, "tag": "1.0", "total_size": 1024, "nodes": []}
    with FakeChartRepo() as repo:
        repo.images[name] = info
        chart_repo = ChartRepoClient(repo.host_port, retry=FAST)
        answer = run(lambda: chart_repo.fetch_image_info(name))
        [request] = repo.requests_to("images")
    assert answer == info
    assert request.param("imageName") == name
    assert set(request.query) == {"imageName"}


def test_given_an_unknown_image_then_fetching_its_info_raises() -> None:
    with FakeChartRepo() as repo:
        chart_repo = ChartRepoClient(repo.host_port, retry=FAST)
        with pytest.raises(RemoteError, match="success=false: image 'nope' not found"):
            run(lambda: chart_repo.fetch_image_info("nope"))
