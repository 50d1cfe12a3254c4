"""Every object Ready and kstatus Current at every sample: a thread that lists all objects of the
three kinds four times a second while an upgrade or downgrade runs, and records any that is not.

kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status, what Flux waits on) calls a custom resource
Current when it is not being deleted, `status.observedGeneration` equals `metadata.generation`,
and neither `Reconciling` nor `Stalled` is True. Those rules are applied here to each object of
each sample, stricter where kstatus is lenient (an object without `observedGeneration` is a
violation, not Current); the kstatus binary itself judges the objects at the end of each phase
(checks.py), since running it on 202 objects a second would cost more than the second.

A violation names the object, what was wrong, when (seconds since the sampler started) and the
step the test had marked then, so a failure says where in the upgrade it happened. A list that
fails is recorded too: the API must answer throughout.

Samples start on a schedule, several at once if the API server is slow, and the largest time
without an answered sample is reported, not asserted: on a loaded machine an API server busy with
the upgrade can take more than a second to list 202 objects. That no state escapes between two
samples is history.py's part (every state etcd stored, however fast it passed).
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config

from connector_operator.api.names import GROUP
from hack.controlplane.cluster import ControlPlane
from tests.upgrade.population import PLURALS, Key

PERIOD = 0.25  # seconds between the starts of two samples: four a second
# A client's patience, not a requirement: a loaded CI machine may answer slowly, but must answer.
LIST_TIMEOUT = 30
IN_FLIGHT = 6  # samples at once, at most (an API server busy with the upgrade answers slowly)


def problems(obj: dict[str, Any]) -> list[str]:
    """What keeps `obj` from being Ready and kstatus Current (empty: nothing)."""
    metadata, status = obj["metadata"], obj.get("status") or {}
    found = []
    if metadata.get("deletionTimestamp"):
        found.append("being deleted (kstatus: Terminating)")
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if observed != generation:
        found.append(f"observedGeneration {observed} != generation {generation} (kstatus: InProgress)")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {})
    if ready.get("status") != "True":
        found.append(f"Ready={ready.get('status')} ({ready.get('reason')}: {ready.get('message')})")
    for kind, verdict in (("Reconciling", "InProgress"), ("Stalled", "Failed")):
        condition = conditions.get(kind, {})
        if condition.get("status") == "True":
            found.append(
                f"{kind}=True ({condition.get('reason')}: {condition.get('message')}; kstatus: {verdict})"
            )
    return found


def key_of(obj: dict[str, Any]) -> Key:
    return Key(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def list_all(api: client.ApiClient, version: str) -> list[dict[str, Any]]:
    """Every object of the three kinds, all namespaces, read at `version`."""
    custom = client.CustomObjectsApi(api)
    items: list[dict[str, Any]] = []
    for plural in PLURALS.values():
        listed = custom.list_cluster_custom_object(GROUP, version, plural, _request_timeout=LIST_TIMEOUT)
        items += listed["items"]
    return items


@dataclass(frozen=True)
class Violation:
    at: float  # seconds since the sampler started
    step: str
    key: Key | None  # None: about the sampling itself
    what: str

    def __str__(self) -> str:
        return f"+{self.at:.2f}s [{self.step}] {self.key or 'sampling'}: {self.what}"


@dataclass
class Sampler:
    """Samples `expected` at `version` between `start()` and `stop()`: a sample starts every
    PERIOD on a schedule of its own, in up to IN_FLIGHT threads, so one slow answer of the API
    server delays no other sample."""

    control_plane: ControlPlane
    expected: list[Key]
    version: str
    samples: int = 0
    max_gap: float = 0.0  # the longest time without an answered sample
    slowest: float = 0.0  # the longest one sample took
    violations: list[Violation] = field(default_factory=list)
    step: str = "start"
    _marks: list[tuple[float, str]] = field(default_factory=list)
    _answered: list[float] = field(default_factory=list)
    _started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _local: threading.local = field(default_factory=threading.local)
    _clients: list[client.ApiClient] = field(default_factory=list)

    def mark(self, step: str) -> None:
        """What the test does from now on (named in later violations)."""
        self.step = step
        self._marks.append((self._now(), step))

    def _now(self) -> float:
        return time.monotonic() - self._started

    def start(self) -> Sampler:
        self._started = time.monotonic()
        self._marks.append((0.0, self.step))
        self._thread = threading.Thread(target=self._run, name="upgrade-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Sampler:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the sampler did not stop"
        for api in self._clients:
            api.close()
        self._gaps(self._now())
        self.violations.sort(key=lambda violation: violation.at)
        return self

    def _step_at(self, at: float) -> str:
        return [step for mark, step in self._marks if mark <= at][-1]

    def _record(self, at: float, key: Key | None, what: str) -> None:
        self.violations.append(Violation(at, self._step_at(at), key, what))

    def _gaps(self, end: float) -> None:
        times = [0.0, *sorted(self._answered), end]
        self.max_gap = max(after - before for before, after in itertools.pairwise(times))

    def _run(self) -> None:
        with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="upgrade-sample") as pool:
            due = time.monotonic()
            while not self._stop.is_set():
                pool.submit(self._sample)
                due += PERIOD
                # The schedule of sampling, not a synchronisation: stop() ends the wait at once.
                self._stop.wait(max(0.0, due - time.monotonic()))

    def _api(self) -> client.ApiClient:
        """A client per sampling thread (the test's thread keeps its own)."""
        api: client.ApiClient | None = getattr(self._local, "api", None)
        if api is None:
            api = config.new_client_from_config(config_file=str(self.control_plane.kubeconfig))
            self._local.api = api
            self._clients.append(api)
        return api

    def _sample(self) -> None:
        began = self._now()
        try:
            items = list_all(self._api(), self.version)
        except Exception as error:  # any failure to list is a finding, not the end of sampling
            self._record(self._now(), None, f"listing failed: {type(error).__name__}: {str(error)[:300]}")
            return
        at = self._now()
        self.samples += 1
        self._answered.append(at)
        self.slowest = max(self.slowest, at - began)
        seen = {key_of(obj): obj for obj in items}
        for key in self.expected:
            obj = seen.get(key)
            for problem in problems(obj) if obj is not None else ["missing"]:
                self._record(at, key, problem)

    def summary(self, limit: int = 15) -> str:
        """The first violations, and how many objects had any, over which time."""
        if not self.violations:
            return "none"
        objects = {v.key for v in self.violations if v.key is not None}
        first, last = self.violations[0].at, self.violations[-1].at
        shown = "\n".join(str(v) for v in self.violations[:limit])
        more = len(self.violations) - limit
        head = f"{len(self.violations)} violations of {len(objects)} objects, +{first:.2f}s to +{last:.2f}s"
        return f"{head}:\n{shown}" + (f"\n... and {more} more" if more > 0 else "")
