"""The OpenAPI document matches the endpoints; generated requests find no server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from market_ledger.adapters.http_api.common import HttpSettings
from market_ledger.adapters.http_api.openapi import DuplicateOperation, openapi_document, paths
from market_ledger.adapters.http_api.openapi_schema import Operation, ok, string
from market_ledger.adapters.http_api.server import create_app
from market_ledger.bootstrap import Ledger
from market_ledger.domain import task
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.market_source import ConfigureSource, UpdateSourceExtras
from market_ledger.domain.user import RegisterUser
from market_ledger.service.handler import utc_now
from market_ledger.service.task_dispatcher import Dispatcher, TaskSettings
from market_ledger.service.task_requests import TaskRequests
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, fail, offer, render
from tests.support.fake_operations import ScriptedOperations
from tests.support.http_live import Api, live_api
from tests.support.tasks import ID, OTHER_ID, accepted, install, uninstall

#: examples in all, spread over every operation and four ways of generating them: valid
#: requests from any user, from the admin, from a known user; invalid requests
EXAMPLES = 200


@pytest.fixture
def http(ledger: Ledger, clock: FakeClock) -> Iterator[Api]:
    v1, broken = offer(), offer("broken")
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("root", role="admin"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        v1,
        render(v1),
        broken,
        *(fail(broken) for _ in range(10)),
        UpdateSourceExtras(SOURCE, {"tops": [{"appid": "firefox", "rank": 1}]}),
        ObserveInstallationState("alice", "firefox", "installing", clock(), source=SOURCE),
        install(),
        *accepted(ID),
        task.ObserveOutcome(ID, task.FAILED, "installFailed"),
        uninstall(OTHER_ID, user="root"),
        task.DispatchTask(OTHER_ID),
    )
    ledger.catch_up()
    # app operations answered by a scripted app-service, so the task routes are exercised too
    dispatcher = Dispatcher(ledger, ScriptedOperations(), TaskSettings(), utc_now)
    with live_api(ledger, tasks=TaskRequests(ledger, dispatcher, utc_now)) as api:
        yield api


def test_the_document_describes_every_route_and_method(http: Api, ledger: Ledger) -> None:
    document = http.client.get("/openapi.json").json()
    served = {
        (route.path, method.lower())
        for route in create_app(ledger).routes
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == served


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def test_every_reference_in_the_document_names_a_component() -> None:
    document = openapi_document(HttpSettings())
    components = {
        f"#/components/{kind}/{name}"
        for kind, named in document["components"].items()
        for name in named
    }
    assert set(_references(document)) <= components


def test_every_operation_has_its_own_id() -> None:
    document = openapi_document(HttpSettings())
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_a_route_declared_twice_is_refused() -> None:
    # given two declarations of one path and method
    alive = ok("Alive.", string())
    twice = [
        Operation("get", "/healthz", "a", "A.", alive),
        Operation("get", "/healthz", "b", "B.", alive),
    ]
    # when the document's paths are built, then the second is refused, not silently kept
    with pytest.raises(DuplicateOperation, match="GET /healthz"):
        paths(twice)


def test_the_document_states_the_configured_limits() -> None:
    # given limits other than the defaults
    configured = HttpSettings(max_body_bytes=1234, max_apps_per_request=7)
    # when the document is built
    document = openapi_document(configured)
    # then the request schema and the summaries state them
    apps = document["components"]["schemas"]["AppsRequest"]["properties"]["apps"]
    assert apps["maxItems"] == 7
    posts = [item["post"] for item in document["paths"].values() if "post" in item]
    assert posts and all("1234 bytes" in post["summary"] for post in posts)


def test_generated_requests_find_no_server_error_and_match_the_document(http: Api) -> None:
    schema = schemathesis.openapi.from_url(f"{http.base_url}/openapi.json")
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE),
        schema.as_strategy(GenerationMode.POSITIVE, headers={"X-Bfl-User": "root"}),
        schema.as_strategy(GenerationMode.POSITIVE, headers={"X-Bfl-User": "alice"}),
        schema.as_strategy(GenerationMode.NEGATIVE),
    )
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def exchange(case: Case) -> None:
        case.call_and_validate(base_url=http.base_url, checks=checks)

    exchange()
