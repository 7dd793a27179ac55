"""A catalog file that moves along the real catalog history, one change set at a time.

The several-instances tests serve a ``file://`` catalog; each :meth:`TimelineCatalog.advance`
lays the next change set of ``olares-catalog-timeline.jsonl`` over it (new apps, new versions,
apps removed), as the public app repository changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.support.fakes.market import iter_timeline


class TimelineCatalog:
    def __init__(self, path: Path, *, keep: Iterable[str] = (), most_changes: int = 3) -> None:
        """``keep``: apps the test relies on, never removed; a change set offering more than
        ``most_changes`` new versions is passed over, to keep each step's renders few."""
        self.path = path
        self.keep = frozenset(keep)
        self.most_changes = most_changes
        self._change_sets: Iterator[dict[str, Any]] = iter_timeline()
        #: the timeline's ``seq`` of each change set laid over the file so far
        self.applied: list[int] = []

    def advance(self) -> dict[str, str]:
        """Lay the next change set that offers new versions over the file; app id -> version
        of each app it offers anew (added, or at another version)."""
        document = json.loads(self.path.read_text())
        apps: dict[str, Any] = document["data"]["apps"]
        for change_set in self._change_sets:
            upserts: dict[str, Any] = change_set.get("upserts", {})
            offered = {
                str(entry["id"]): str(entry["version"])
                for key, entry in upserts.items()
                if (apps.get(key) or {}).get("version") != entry["version"]
            }
            if not offered or len(offered) > self.most_changes:
                continue
            apps.update(upserts)
            for key in change_set.get("removed", []):
                if key not in self.keep:
                    apps.pop(key, None)
            self.path.write_text(json.dumps(document))
            self.applied.append(int(change_set["seq"]))
            return offered
        raise AssertionError("the catalog timeline has no change set left to offer")
