"""Phase 3: the chart-repo state-changes feed (uploads finished elsewhere, image updates).

Changes are taken in id order after the stored cursor. The commands a change causes and the
cursor's advance are saved in one transaction, so the cursor never runs ahead of what it
stands for. It never moves backwards either: a change at or below it is already consumed.
A change that fails (chart-repo unreachable for its details) stops the page there and is
tried again next cycle, up to ``MAX_TRIES`` cycles; then it is skipped, loudly. A change
that cannot be read at all is skipped at once, with its reason.
"""

from __future__ import annotations

import logging
from typing import Any

from market_ledger.domain.decider import Command
from market_ledger.domain.feed_cursor import ConsumeFeed
from market_ledger.domain.listing import OfferApp, RecordRender, UpdateImageInfo
from market_ledger.domain.manifest import InvalidManifest, Manifest
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.rendering import compact_rendered
from market_ledger.projections import work_queries as q
from market_ledger.service.context import CycleContext
from market_ledger.service.ports import ChangesFeed, RemoteError
from market_ledger.service.remote_values import StateChange

log = logging.getLogger(__name__)

FEED = "chart-repo"
UPLOAD = "app_upload_completed"
IMAGE = "image_info_updated"
MAX_TRIES = 3
MAX_PAGES_PER_CYCLE = 20


class FeedPhase:
    name = "feed"

    def __init__(self) -> None:
        #: change id -> cycles it has failed in (in memory: a restart tries again)
        self.failures: dict[int, int] = {}

    async def run(self, ctx: CycleContext) -> dict[str, Any]:
        chart_repo = ctx.remote.chart_repo
        if chart_repo is None:
            return {"skipped": "no chart-repo configured"}
        cursor = await ctx.read(q.feed_position, FEED)
        report: dict[str, Any] = {"from": cursor, "consumed": 0, "skipped": [], "retry": []}
        for _ in range(MAX_PAGES_PER_CYCLE):
            if ctx.stop.is_set():
                break
            page = await chart_repo.state_changes(after_id=cursor)
            commands: list[Command] = []
            consumed_to = cursor
            blocked = False
            for skipped in page.skipped:
                log.warning(
                    "chart-repo change %s cannot be read, skipped: %s", skipped.id, skipped.reason
                )
                report["skipped"].append({"id": skipped.id, "reason": skipped.reason})
            readable_ids = {change.id for change in page.changes}
            unreadable = sorted(s.id for s in page.skipped if s.id is not None)
            for change_id in sorted(readable_ids | set(unreadable)):
                if change_id <= cursor:
                    continue  # already consumed: a feed answering lower ids never rewinds us
                if change_id not in readable_ids:
                    consumed_to = change_id
                    continue
                change = next(ch for ch in page.changes if ch.id == change_id)
                try:
                    commands += await self._commands_for(ctx, chart_repo, change)
                except (RemoteError, InvalidManifest) as error:
                    tries = self.failures.get(change.id, 0) + 1
                    self.failures[change.id] = tries
                    if tries < MAX_TRIES:
                        log.warning(
                            "chart-repo change %d (%s) failed, tried again next cycle "
                            "(%d of %d): %s",
                            change.id,
                            change.type,
                            tries,
                            MAX_TRIES,
                            error,
                        )
                        report["retry"].append({"id": change.id, "reason": str(error)})
                        blocked = True
                        break
                    log.error(
                        "chart-repo change %d (%s) failed %d times, skipped: %s",
                        change.id,
                        change.type,
                        tries,
                        error,
                    )
                    report["skipped"].append({"id": change.id, "reason": str(error)})
                self.failures.pop(change.id, None)
                consumed_to = change.id
            if consumed_to > cursor:
                await ctx.handle([*commands, ConsumeFeed(FEED, consumed_to)])
                report["consumed"] += consumed_to - cursor
                cursor = consumed_to
            if blocked or not page.may_have_more:
                break
        if report["consumed"] == 0 and cursor > 0:
            report["warning"] = await self._reset_warning(chart_repo, cursor)
        report["to"] = cursor
        return report

    async def _commands_for(
        self, ctx: CycleContext, chart_repo: ChangesFeed, change: StateChange
    ) -> list[Command]:
        if change.type == UPLOAD and change.app_data is not None:
            data = change.app_data
            app = await chart_repo.fetch_uploaded_app(data.user_id, data.app_name, data.source)
            return await self._upload(ctx, chart_repo, data.user_id, data.source, app)
        if change.type == IMAGE and change.image_data is not None:
            name = change.image_data.image_name
            info = await chart_repo.fetch_image_info(name)
            listings = await ctx.read(q.listings_with_image, name)
            return [UpdateImageInfo(u, s, a, name, info) for u, s, a in listings]
        log.info(
            "chart-repo change %d of type %r has nothing for the ledger", change.id, change.type
        )
        return []

    async def _upload(
        self, ctx: CycleContext, chart_repo: ChangesFeed, user: str, source: str, app: Any
    ) -> list[Command]:
        """An app uploaded for one user: offered (and rendered, if chart-repo already did)."""
        entry = dict(app["raw_data"])
        manifest = Manifest.from_entry(entry)
        commands: list[Command] = []
        sources = {s["source_id"] for s in await ctx.read(q.live_sources)}
        if source not in sources:
            commands.append(ConfigureSource(source, "local", "file://", 0, True))
        commands.append(OfferApp(user, source, manifest))
        if chart_repo.is_rendered(app):
            commands.append(
                RecordRender(
                    user,
                    source,
                    manifest.app_id,
                    manifest.version,
                    manifest.digest,
                    compact_rendered(app, entry),
                )
            )
        return commands

    @staticmethod
    async def _reset_warning(chart_repo: ChangesFeed, cursor: int) -> str | None:
        """Say so when the feed holds changes we will never be shown (its ids were reset)."""
        try:
            first = await chart_repo.state_changes(after_id=0, limit=1)
        except RemoteError:
            return None
        if (
            first.total_available
            and first.total_available < cursor
            and first.changes
            and (first.changes[0].id <= cursor)
        ):
            message = (
                f"chart-repo's feed holds {first.total_available} change(s) numbered from "
                f"{first.changes[0].id}, below the cursor {cursor}: its ids were probably reset; "
                "those changes are not replayed"
            )
            log.warning(message)
            return message
        return None
