"""Fake market, chart-repo and app-service servers: real HTTP on loopback, driven by tests."""

from tests.support.fakes.app_service import FakeAppService
from tests.support.fakes.chart_repo import FakeChartRepo
from tests.support.fakes.http_fake import RecordedRequest, Reply
from tests.support.fakes.market import FakeMarket

__all__ = ["FakeAppService", "FakeChartRepo", "FakeMarket", "RecordedRequest", "Reply"]
