"""The fake app-service's operation lifecycles, read from a real nats-server and over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from market_ledger.domain.canonical import parse_instant
from tests.support.app_service_calls import (
    app_states,
    call,
    messages_of,
    op_id_of,
    states_of,
    subject_prefix,
    until_state,
)
from tests.support.fakes import FakeAppService
from tests.support.fakes.app_state_messages import AppState
from tests.support.fakes.nats_publisher import PublishFailed
from tests.support.nats_server import Nats, eventually, nats_for_test

INSTALL_STATES = ["pending", "downloading", "installing", "running"]


@pytest.fixture
def nats_env(tmp_path: Path) -> Iterator[Nats]:
    with nats_for_test(tmp_path) as env:
        yield env


def fake_on(nats: Nats, **options: Any) -> FakeAppService:
    options.setdefault("step_delay", 0.005)
    return FakeAppService(nats_url=nats.url, subject_prefix=subject_prefix(nats), **options)


def listed(fake: FakeAppService) -> dict[tuple[str, str], str]:
    apps = httpx.get(f"{fake.url}/app-service/v1/all/apps", timeout=10).json()
    return {(a["spec"]["owner"], a["spec"]["name"]): a["status"]["state"] for a in apps}


async def answered(fake: FakeAppService, action: str, app: str, **options: Any) -> str:
    answer = await asyncio.to_thread(call, fake.url, action, app, **options)
    assert answer.status_code == 200 and answer.json()["code"] == 200, answer.text
    return op_id_of(answer)


def test_given_an_install_then_its_four_states_come_in_order_under_one_op_id_and_all_apps_lists_it(
    nats_env: Nats,
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            async with app_states(nats_env) as inbox:
                op_id = await answered(fake, "install", "jellyfin")
                await until_state(inbox, "jellyfin", "running")
                fake.settle()
                assert listed(fake) == {("alice", "jellyfin"): "running"}
        messages = messages_of(inbox, "jellyfin")
        assert [m["state"] for m in messages] == INSTALL_STATES
        assert {(m["opID"], m["opType"], m["user"]) for m in messages} == {
            (op_id, "install", "alice")
        }
        times = [parse_instant(m["createTime"]) for m in messages]
        assert times == sorted(times) and len(set(times)) == 4
        assert len({m["eventID"] for m in messages}) == 4
        assert [m["progress"] for m in messages] == ["", "50.00", "100.00", ""]
        assert [e["state"] for e in messages[-1]["entranceStatuses"]] == ["running"]
        assert {subject for subject, _ in inbox.messages} == {nats_env.names.app_state_of("alice")}
        assert [(o.kind, o.user, o.app, o.op_id) for o in fake.operations] == [
            ("install", "alice", "jellyfin", op_id)
        ]

    asyncio.run(scenario())


def test_given_an_install_held_at_downloading_then_all_apps_shows_it_downloading_until_it_goes_on(
    nats_env: Nats,
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.pause_at("jellyfin", "downloading")
            async with app_states(nats_env) as inbox:
                await answered(fake, "install", "jellyfin")
                await until_state(inbox, "jellyfin", "downloading")
                assert listed(fake) == {("alice", "jellyfin"): "downloading"}
                assert states_of(inbox, "jellyfin") == ["pending", "downloading"]
                fake.resume("jellyfin")
                await until_state(inbox, "jellyfin", "running")
                assert listed(fake) == {("alice", "jellyfin"): "running"}

    asyncio.run(scenario())


def test_given_a_clone_then_its_states_name_the_new_app_and_its_original(nats_env: Nats) -> None:
    body = {"source": "market", "rawAppName": "jellyfin", "requestHash": "b7e1a2", "title": "Kids"}

    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.install("alice", "jellyfin", entrances=["jellyfin", "admin"])
            async with app_states(nats_env) as inbox:
                op_id = await answered(fake, "install", "jellyfinb7e1a2", body=body)
                await until_state(inbox, "jellyfinb7e1a2", "running")
                fake.settle()
            assert fake.operations[0].kind == "clone"
            assert fake.operations[0].body == body
            assert listed(fake)[("alice", "jellyfinb7e1a2")] == "running"
        messages = messages_of(inbox, "jellyfinb7e1a2")
        assert [m["state"] for m in messages] == INSTALL_STATES
        assert {(m["rawAppName"], m["title"], m["opType"], m["opID"]) for m in messages} == {
            ("jellyfin", "Kids", "install", op_id)
        }
        assert [e["name"] for e in messages[-1]["entranceStatuses"]] == ["jellyfin", "admin"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("failing", "action", "states", "left"),
    [
        (
            "fail_download",
            "install",
            ["pending", "downloading", "downloadFailed"],
            "downloadFailed",
        ),
        ("fail_install", "install", [*INSTALL_STATES[:3], "installFailed"], "installFailed"),
        ("fail_upgrade", "upgrade", ["upgrading", "upgradeFailed"], "upgradeFailed"),
        ("fail_uninstall", "uninstall", ["uninstalling", "uninstallFailed"], "uninstallFailed"),
    ],
)
def test_given_a_step_set_to_fail_then_the_lifecycle_ends_in_its_failed_state(
    nats_env: Nats, failing: str, action: str, states: list[str], left: str
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            if action != "install":
                fake.install("alice", "immich")
            getattr(fake, failing)("immich")
            async with app_states(nats_env) as inbox:
                op_id = await answered(fake, action, "immich")
                await until_state(inbox, "immich", states[-1])
                fake.settle()
            assert listed(fake) == {("alice", "immich"): left}
        messages = messages_of(inbox, "immich")
        assert [m["state"] for m in messages] == states
        assert {(m["opType"], m["opID"]) for m in messages} == {(action, op_id)}

    asyncio.run(scenario())


def test_given_an_uninstall_then_the_app_is_uninstalled_and_leaves_all_apps(
    nats_env: Nats,
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.install("bob", "n8n")
            async with app_states(nats_env) as inbox:
                op_id = await answered(fake, "uninstall", "n8n", user="bob", body={"all": False})
                await until_state(inbox, "n8n", "uninstalled")
                fake.settle()
            assert listed(fake) == {}
        messages = messages_of(inbox, "n8n")
        assert [(m["state"], m["opType"], m["opID"]) for m in messages] == [
            ("uninstalling", "uninstall", op_id),
            ("uninstalled", "uninstall", op_id),
        ]
        assert {subject for subject, _ in inbox.messages} == {nats_env.names.app_state_of("bob")}

    asyncio.run(scenario())


def test_given_an_upgrade_then_the_app_upgrades_and_runs_again(nats_env: Nats) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.install("alice", "immich")
            fake.pause_at("immich", "upgrading")
            async with app_states(nats_env) as inbox:
                op_id = await answered(fake, "upgrade", "immich", body={"version": "1.2.0"})
                await until_state(inbox, "immich", "upgrading")
                assert listed(fake) == {("alice", "immich"): "upgrading"}
                fake.resume()
                await until_state(inbox, "immich", "running")
                fake.settle()
            assert listed(fake) == {("alice", "immich"): "running"}
        assert [(m["state"], m["opType"], m["opID"]) for m in messages_of(inbox, "immich")] == [
            ("upgrading", "upgrade", op_id),
            ("running", "upgrade", op_id),
        ]

    asyncio.run(scenario())


@pytest.mark.parametrize("reports_as", ["install", "cancel"])
def test_given_an_install_going_when_it_is_canceled_then_it_stops_and_reports_the_cancel(
    nats_env: Nats, reports_as: str
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env, cancel_reports_as=reports_as) as fake:
            fake.pause_at("immich", "downloading")
            async with app_states(nats_env) as inbox:
                install_id = await answered(fake, "install", "immich")
                await until_state(inbox, "immich", "downloading")
                cancel_id = await answered(fake, "cancel", "immich")
                await until_state(inbox, "immich", "installingCanceled")
                fake.settle()
            assert listed(fake) == {}
        expected = (install_id, "install") if reports_as == "install" else (cancel_id, "cancel")
        assert cancel_id != install_id
        assert [(m["state"], m["opID"], m["opType"]) for m in messages_of(inbox, "immich")] == [
            ("pending", install_id, "install"),
            ("downloading", install_id, "install"),
            ("installingCanceled", *expected),
        ]
        assert [o.kind for o in fake.operations] == ["install", "cancel"]

    asyncio.run(scenario())


@pytest.mark.parametrize("reports_as", ["install", "cancel"])
def test_given_nothing_going_when_a_cancel_comes_then_it_is_accepted_and_reported_failed(
    nats_env: Nats, reports_as: str
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env, cancel_reports_as=reports_as) as fake:
            fake.install("alice", "immich")
            async with app_states(nats_env) as inbox:
                cancel_id = await answered(fake, "cancel", "immich")
                await until_state(inbox, "immich", "installCancelFailed")
                fake.settle()
            assert listed(fake) == {("alice", "immich"): "running"}
        assert [(m["state"], m["opID"], m["opType"]) for m in messages_of(inbox, "immich")] == [
            ("installCancelFailed", cancel_id, reports_as)
        ]

    asyncio.run(scenario())


def test_given_an_install_accepted_silently_then_it_gets_an_op_id_and_nothing_is_published(
    nats_env: Nats,
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.accept_silently("immich")
            async with app_states(nats_env) as inbox:
                silent_id = await answered(fake, "install", "immich")
                await answered(fake, "install", "jellyfin")
                await until_state(inbox, "jellyfin", "running")
                fake.settle()
            assert listed(fake) == {("alice", "jellyfin"): "running"}
        assert fake.op_ids("install")[0] == silent_id
        assert messages_of(inbox, "immich") == []
        assert {m["name"] for _, m in fake.published} == {"jellyfin"}

    asyncio.run(scenario())


def test_given_a_stale_running_then_it_is_dated_before_the_install_and_all_apps_does_not_move(
    nats_env: Nats,
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.publish_stale("immich", "old_time", state="running")
            async with app_states(nats_env) as inbox:
                op_id = await answered(fake, "install", "immich")
                await until_state(inbox, "immich", "running")
                fake.settle()
            assert listed(fake) == {("alice", "immich"): "installing"}
        messages = messages_of(inbox, "immich")
        assert [m["state"] for m in messages] == INSTALL_STATES
        assert parse_instant(messages[-1]["createTime"]) < parse_instant(messages[0]["createTime"])
        assert messages[-1]["opID"] == op_id
        assert len({m["eventID"] for m in messages}) == 4

    asyncio.run(scenario())


def test_given_a_stale_next_message_under_another_op_then_only_that_one_has_another_op_id(
    nats_env: Nats,
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.publish_stale("immich", "other_op")
            async with app_states(nats_env) as inbox:
                op_id = await answered(fake, "install", "immich")
                await until_state(inbox, "immich", "running")
                fake.settle()
        op_ids = [m["opID"] for m in messages_of(inbox, "immich")]
        assert op_ids[0] != op_id and op_ids[1:] == [op_id] * 3
        times = [parse_instant(m["createTime"]) for m in messages_of(inbox, "immich")]
        assert times == sorted(times)

    asyncio.run(scenario())


def test_given_a_message_published_by_hand_then_it_arrives_with_its_fields_and_no_app_moves(
    nats_env: Nats,
) -> None:
    by_hand = AppState("bob", "n8n", "stopped", op_type="stop", op_id="op-9", title="N8N")

    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            async with app_states(nats_env) as inbox:
                sent = [fake.publish_state(by_hand) for _ in range(2)]
                await eventually(lambda: len(inbox.messages) == 2, what="the messages")
            assert listed(fake) == {}
        assert [m for _, m in inbox.messages] == sent
        assert [(m["state"], m["opType"], m["opID"], m["title"]) for m in sent] == [
            ("stopped", "stop", "op-9", "N8N")
        ] * 2
        assert sent[0]["eventID"] != sent[1]["eventID"]
        assert {subject for subject, _ in inbox.messages} == {nats_env.names.app_state_of("bob")}

    asyncio.run(scenario())


def test_given_a_step_failing_when_its_failure_is_cleared_then_the_next_install_succeeds(
    nats_env: Nats,
) -> None:
    async def scenario() -> None:
        with fake_on(nats_env) as fake:
            fake.fail_download("immich")
            async with app_states(nats_env) as inbox:
                await answered(fake, "install", "immich")
                await until_state(inbox, "immich", "downloadFailed")
                fake.settle()
                fake.clear_failures("immich")
                await answered(fake, "install", "immich")
                await until_state(inbox, "immich", "running")
        assert states_of(inbox, "immich") == [
            "pending",
            "downloading",
            "downloadFailed",
            *INSTALL_STATES,
        ]

    asyncio.run(scenario())


def test_given_the_nats_server_gone_when_a_lifecycle_publishes_then_the_failure_is_raised(
    tmp_path: Path,
) -> None:
    with nats_for_test(tmp_path, own=True) as env:
        fake = fake_on(env).start()
        assert env.server is not None
        env.server.stop()
        try:
            answer = call(fake.url, "install", "immich")
            assert answer.status_code == 200
            with pytest.raises(PublishFailed, match="not published") as raised:
                fake.settle()
        finally:
            fake.stop()
    assert "not connected" in str(raised.value.__cause__)
    assert fake.published == []
