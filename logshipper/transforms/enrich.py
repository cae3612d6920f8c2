"""Container name, image and labels for events that carry only a container id.

Sources that know only the id (json-file: the directory name; journald: CONTAINER_ID and no labels;
fluentd: id and name) get the rest from the bundled runtime's state files and Docker's config.v2.json,
through hostwatch.core.containers.list_containers, the one reader of both. A 12-character id (Docker's
CONTAINER_ID, the fluentd tag) is replaced by the full id, so a container's records share one Kafka key.

The hot path is a dict lookup per event. The cache is re-read in a background thread every
`refresh_interval` (renames, removed containers), and on the spot when an event names an id it does not
know (a container started since): a container's first lines are enriched like its others. An id that
is nowhere to be found is looked for again only after `miss_refresh_interval`, and misses of any ids
rescan at most MISS_BURST times per MISS_WINDOW seconds, so a flood of bogus ids stays cheap.
Values an event already has are kept; labels are shared with the cache, not copied (read-only).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hostwatch.core.containers import ContainerRef, list_containers
from hostwatch.core.events import LogEvent

log = logging.getLogger("hostwatch.logshipper.enrich")

DEFAULT_REFRESH_INTERVAL = 30.0
DEFAULT_MISS_REFRESH_INTERVAL = 1.0
MISS_BURST = 5
MISS_WINDOW = 1.0
MAX_MISSED_IDS = 10_000
SHORT_ID_LEN = 12  # Docker's short id, as in CONTAINER_ID and the fluentd tag

Loader = Callable[[Path, Path], list[ContainerRef]]


def index(refs: list[ContainerRef]) -> dict[str, ContainerRef]:
    """By full id and by 12-character prefix; an ambiguous prefix maps to nothing."""
    by_id: dict[str, ContainerRef] = {}
    ambiguous: set[str] = set()
    for ref in refs:
        by_id[ref.id] = ref
    for ref in refs:
        short = ref.id[:SHORT_ID_LEN]
        if short == ref.id or short in ambiguous:
            continue
        other = by_id.get(short)
        if other is not None and other.id != ref.id:
            ambiguous.add(short)
            if other.id != short:
                del by_id[short]
            continue
        by_id[short] = ref
    return by_id


class Enricher:
    def __init__(self, state_root: Path, docker_root: Path, *, refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
                 miss_refresh_interval: float = DEFAULT_MISS_REFRESH_INTERVAL,
                 clock: Callable[[], float] = time.monotonic, loader: Loader = list_containers,
                 background: bool = True) -> None:
        self.state_root = Path(state_root)
        self.docker_root = Path(docker_root)
        self.refresh_interval = refresh_interval
        self.miss_refresh_interval = miss_refresh_interval
        self._clock = clock
        self._loader = loader
        self._background = background
        self._by_id: dict[str, ContainerRef] = {}
        self._due = float("-inf")  # when the periodic refresh is next due
        self._missed: dict[str, float] = {}  # unknown id -> when it was last looked for in vain
        self._miss_scans: list[float] = []  # times of recent scans caused by misses
        self._thread: threading.Thread | None = None
        self.refreshes = 0

    def apply(self, events: list[LogEvent]) -> None:
        """Fill container_name, image and labels (and the full id) in place."""
        now = self._clock()
        if now >= self._due:
            self._periodic(now)
        by_id = self._by_id
        missed: list[LogEvent] | None = None
        for e in events:
            cid = e.container_id
            if cid is None or (e.labels is not None and e.container_name is not None and e.image is not None):
                continue
            ref = by_id.get(cid)
            if ref is None:
                if missed is None:
                    missed = []
                missed.append(e)
                continue
            _fill(e, ref)
        if missed is not None and self._may_scan_for(missed, now):
            self._miss_scans.append(now)
            self.refresh()
            by_id = self._by_id
            for e in missed:
                ref = by_id.get(e.container_id or "")
                if ref is not None:
                    _fill(e, ref)
                else:
                    self._missed[e.container_id or ""] = now
            if len(self._missed) > MAX_MISSED_IDS:
                self._missed.clear()

    def _may_scan_for(self, missed: list[LogEvent], now: float) -> bool:
        """A miss rescans when one of its ids was not looked for in vain lately, within the burst cap."""
        fresh = any(now - self._missed.get(e.container_id or "", float("-inf")) >= self.miss_refresh_interval
                    for e in missed)
        if not fresh:
            return False
        self._miss_scans = [t for t in self._miss_scans if now - t < MISS_WINDOW]
        return len(self._miss_scans) < MISS_BURST

    def lookup(self, container_id: str) -> LogEvent:
        """What `apply` fills in for events of `container_id` (one call for a batch of one container): an
        event with only container_id, container_name, image and labels set."""
        probe = LogEvent(0, "", "", "", container_id=container_id)
        self.apply([probe])
        return probe

    def refresh(self) -> None:
        """Re-read the metadata now (a scan of the state root and Docker's containers directory)."""
        try:
            refs = self._loader(self.state_root, self.docker_root)
        except OSError as e:  # e.g. a root that is not readable: keep what is known
            log.warning("cannot read container metadata: %s", e)
            return
        self._by_id = index(refs)  # one reference swap: safe against the other thread
        self.refreshes += 1

    def _periodic(self, now: float) -> None:
        self._due = now + self.refresh_interval
        if not self._background or not self._by_id:
            self.refresh()  # the first load is needed now, for this very batch
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self.refresh, name="enrich refresh", daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for a background refresh in progress (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)


def _fill(e: LogEvent, ref: ContainerRef) -> None:
    if e.container_id != ref.id:
        e.container_id = ref.id
    if e.container_name is None and ref.name:
        e.container_name = ref.name
    if e.image is None and ref.image:
        e.image = ref.image
    if e.labels is None:
        e.labels = ref.labels
