"""Fake market, chart-repo and app-service servers: real HTTP on loopback, driven by tests."""

from tests.fakes.app_service import FakeAppService
from tests.fakes.chart_repo import FakeChartRepo
from tests.fakes.http_fake import RecordedRequest, Reply
from tests.fakes.market import FakeMarket

__all__ = ["FakeAppService", "FakeChartRepo", "FakeMarket", "RecordedRequest", "Reply"]
