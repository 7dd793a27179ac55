"""Task operations as app-service receives them: path, headers and body of each kind, sent once
to a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import pytest

from market_ledger.adapters.app_service.operation_requests import build_request, path_segment
from market_ledger.adapters.app_service.operations import AppServiceOperations
from market_ledger.service.app_operations import (
    Accepted,
    EnvValue,
    ImageSize,
    Operation,
    Rejected,
)
from tests.adapters.app_service.scripted import ScriptedAppService
from tests.support.fakes import RecordedRequest, Reply

T = TypeVar("T")
TOKEN = "eyJhbGciOiJIUzI1NiJ9.alice-token-5mQ1xExampleSig"
REPO = "http://chart-repo-service.os-framework:82/"
IMAGE = ImageSize("docker.io/jellyfin/jellyfin:10.10.7", 512345678)
INSTALL = Operation(
    kind="install",
    user="alice",
    app_name="jellyfin",
    token=TOKEN,
    source="market.olares",
    source_type="remote",
    envs=(EnvValue("TZ", "Europe/Berlin"),),
    images=(IMAGE,),
)
CLONE = attrs.evolve(
    INSTALL,
    kind="clone",
    app_name="jellyfinbdedfa",
    envs=(EnvValue("JELLYFIN_PublishedServerUrl", "https://kids.example.com"),),
    raw_app_name="jellyfin",
    request_hash="bdedfa",
    title="Jellyfin Kids",
    entrances=(("jellyfin", "Jellyfin Kids"),),
)
UPGRADE = attrs.evolve(INSTALL, kind="upgrade", version="10.11.0", envs=())
UNINSTALL = Operation(
    kind="uninstall", user="alice", app_name="jellyfin", token=TOKEN, delete_data=True
)
CANCEL = Operation(kind="cancel", user="alice", app_name="immich", token=TOKEN)


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())


def submit(service: ScriptedAppService, operation: Operation) -> Accepted | Rejected:
    operations = AppServiceOperations(service.host, service.port, repo_url=REPO, timeout=5.0)
    return run(lambda: operations.submit(operation))


def sent(operation: Operation) -> RecordedRequest:
    """The one request app-service received for ``operation``."""
    with ScriptedAppService() as service:
        assert isinstance(submit(service, operation), Accepted)
        return service.only_request


def headers_of(request: RecordedRequest) -> dict[str, str]:
    ours = ("x-authorization", "x-bfl-user", "content-type", "x-market-user", "x-market-source")
    return {name: value for name, value in request.headers.items() if name in (*ours, "accept")}


def keys(body: Any) -> list[str]:
    return list(body)


def test_given_an_install_when_submitted_then_app_service_gets_the_replaced_systems_request() -> (
    None
):
    # given an install of jellyfin from a market source, with an env and an image
    # when it is submitted
    request = sent(attrs.evolve(INSTALL, version="10.10.7"))
    # then path, headers and body are those the replaced system sent (and no version)
    assert (request.method, request.path, request.query) == (
        "POST",
        "/app-service/v1/apps/jellyfin/install",
        {},
    )
    assert headers_of(request) == {
        "x-authorization": TOKEN,
        "x-bfl-user": "alice",
        "content-type": "application/json",
        "x-market-user": "alice",
        "x-market-source": "market.olares",
        "accept": "*/*",  # httpx's own default; only upgrade asks for it by name
    }
    body = request.json()
    assert body == {
        "repoUrl": REPO,
        "source": "market",
        "x_market_user": "alice",
        "x_market_source": "market.olares",
        "images": [{"name": IMAGE.name, "size": IMAGE.size}],
        "envs": [{"envName": "TZ", "value": "Europe/Berlin"}],
    }
    assert keys(body) == ["repoUrl", "source", "x_market_user", "x_market_source", "images", "envs"]


def test_given_an_install_without_envs_or_images_then_envs_goes_empty_and_images_not_at_all() -> (
    None
):
    request = sent(attrs.evolve(INSTALL, envs=(), images=()))
    assert b'"envs":[]' in request.body
    assert "images" not in request.json()


def test_given_an_uploaded_chart_when_installed_then_app_service_is_told_the_source_is_custom() -> (
    None
):
    body = sent(attrs.evolve(INSTALL, source="upload", source_type="upload")).json()
    assert (body["source"], body["x_market_source"]) == ("custom", "upload")


def test_given_envs_with_a_value_from_or_no_value_then_each_is_sent_as_go_writes_it() -> None:
    envs = (
        EnvValue("DB_PASSWORD", value_from="OLARES_USER_PASSWORD"),
        EnvValue("EMPTY", ""),
        EnvValue("REF", value_from=""),
    )
    assert sent(attrs.evolve(INSTALL, envs=envs)).json()["envs"] == [
        {"envName": "DB_PASSWORD", "valueFrom": {"envName": "OLARES_USER_PASSWORD"}},
        {"envName": "EMPTY"},
        {"envName": "REF", "valueFrom": {}},
    ]


def test_given_a_clone_when_submitted_then_it_installs_the_new_name_with_the_clone_fields() -> None:
    request = sent(CLONE)
    assert request.path == "/app-service/v1/apps/jellyfinbdedfa/install"
    assert headers_of(request)["x-market-source"] == "market.olares"
    body = request.json()
    assert body == {
        "repoUrl": REPO,
        "source": "market",
        "x_market_user": "alice",
        "x_market_source": "market.olares",
        "images": [{"name": IMAGE.name, "size": IMAGE.size}],
        "envs": [{"envName": "JELLYFIN_PublishedServerUrl", "value": "https://kids.example.com"}],
        "entrances": [{"name": "jellyfin", "title": "Jellyfin Kids"}],
        "rawAppName": "jellyfin",
        "requestHash": "bdedfa",
        "title": "Jellyfin Kids",
    }
    assert keys(body)[-4:] == ["entrances", "rawAppName", "requestHash", "title"]


def test_given_a_clone_without_title_or_entrances_then_both_are_left_out_and_envs_kept() -> None:
    body = sent(attrs.evolve(CLONE, title="", entrances=(), envs=())).json()
    assert "title" not in body and "entrances" not in body
    assert body["envs"] == [] and body["rawAppName"] == "jellyfin"


def test_given_an_upgrade_when_submitted_then_it_carries_the_version_and_asks_for_any_type() -> (
    None
):
    request = sent(UPGRADE)
    assert request.path == "/app-service/v1/apps/jellyfin/upgrade"
    assert headers_of(request) == {
        "x-authorization": TOKEN,
        "x-bfl-user": "alice",
        "content-type": "application/json",
        "x-market-user": "alice",
        "x-market-source": "market.olares",
        "accept": "*/*",
    }
    body = request.json()
    assert keys(body) == [
        "repoUrl",
        "version",
        "x_market_user",
        "source",
        "x_market_source",
        "images",
        "envs",
    ]
    assert (body["version"], body["source"], body["envs"]) == ("10.11.0", "market", [])


def test_given_an_uninstall_when_submitted_then_only_its_two_flags_and_three_headers_go() -> None:
    request = sent(UNINSTALL)
    assert request.path == "/app-service/v1/apps/jellyfin/uninstall"
    assert request.body == b'{"all":false,"deleteData":true}'
    assert headers_of(request) == {
        "x-authorization": TOKEN,
        "x-bfl-user": "alice",
        "content-type": "application/json",
        "accept": "*/*",
    }


def test_given_a_cancel_when_submitted_then_it_posts_no_body_to_cancel_of_type_operate() -> None:
    request = sent(CANCEL)
    assert (request.method, request.path) == ("POST", "/app-service/v1/apps/immich/cancel")
    assert request.query == {"type": ["operate"]}
    assert request.body == b""
    assert "x-market-user" not in request.headers and "x-market-source" not in request.headers
    assert request.headers["x-authorization"] == TOKEN


@pytest.mark.parametrize(
    ("app_name", "segment"),
    [
        ("jellyfin", "jellyfin"),
        ("a b/c?d;e,f", "a%20b%2Fc%3Fd%3Be%2Cf"),
        ("keep$&+:=@-_.~", "keep$&+:=@-_.~"),
        ("caf\u00e9", "caf%C3%A9"),
        ("..", "%2E%2E"),
    ],
)
def test_given_an_app_name_when_put_in_the_path_then_it_is_escaped_as_go_path_escape_does(
    app_name: str, segment: str
) -> None:
    assert path_segment(app_name) == segment
    request = sent(attrs.evolve(UNINSTALL, app_name=app_name))
    assert request.path == f"/app-service/v1/apps/{segment}/uninstall"


def test_given_a_user_name_beyond_ascii_then_its_header_is_sent_as_utf_8() -> None:
    request = sent(attrs.evolve(CANCEL, user="jos\u00e9"))
    # the server reads header bytes as Latin-1
    assert request.headers["x-bfl-user"].encode("latin-1") == "jos\u00e9".encode()


def test_given_a_token_with_a_line_break_then_nothing_is_sent_and_the_reason_omits_the_token() -> (
    None
):
    # given a token that would start a header of its own
    bad = "eyJhbGciOiJIUzI1NiJ9.evil\r\nX-Admin: yes"
    with ScriptedAppService() as service:
        # when it is submitted
        outcome = submit(service, attrs.evolve(CANCEL, token=bad))
        # then it is rejected without a request, and the reason does not show the token
        assert service.requests == []
    assert isinstance(outcome, Rejected)
    assert "X-Authorization" in outcome.reason and "evil" not in outcome.reason


def test_given_a_kind_app_service_does_not_take_then_it_is_rejected_without_a_request() -> None:
    with ScriptedAppService() as service:
        outcome = submit(service, attrs.evolve(CANCEL, kind="reboot"))
        assert service.requests == []
    assert isinstance(outcome, Rejected) and "reboot" in outcome.reason


def test_given_a_request_when_shown_then_its_text_carries_no_token() -> None:
    assert TOKEN not in repr(build_request(INSTALL, REPO))


def test_given_installed_apps_when_listed_then_app_services_all_apps_answer_is_read() -> None:
    application = {
        "metadata": {"namespace": "jellyfin-alice"},
        "spec": {"owner": "alice", "name": "jellyfin", "source": "market"},
        "status": {"state": "running"},
    }
    with ScriptedAppService(Reply.json([application])) as service:
        operations = AppServiceOperations(service.host, service.port, repo_url=REPO)
        apps = run(operations.all_apps)
        assert service.only_request.path == "/app-service/v1/all/apps"
    assert [(app.key, app.state) for app in apps.apps] == [(("alice", "jellyfin"), "running")]
