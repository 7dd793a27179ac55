"""The OpenAPI document matches the endpoints; generated requests find no server error."""

from __future__ import annotations

from collections.abc import Iterator

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

from market_ledger.adapters.http_api.server import create_app
from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource, UpdateSourceExtras
from market_ledger.domain.user import RegisterUser
from tests.support.builders import SOURCE, fail, offer, render
from tests.support.http_live import Api, live_api

#: examples in all, spread over every operation and four ways of generating them: valid
#: requests from any user, from the admin, from a known user; invalid requests
EXAMPLES = 200


@pytest.fixture
def http(ledger: Ledger) -> Iterator[Api]:
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
    )
    ledger.catch_up()
    with live_api(ledger) as api:
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
