"""The upgrade test's steps and judgement: the previous release installed and populated, a phase
(upgrade or downgrade) run under the sampler from a baseline, and what each phase must show.

A phase's assertions are gathered rather than raised one by one, so that a failed upgrade still
runs the downgrade and one report names everything that went wrong in both, with the counts.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from connector_operator.api.names import GROUP
from hack.controlplane.cluster import ControlPlane
from open_connectors_simulator.control import SimulatorControl
from tests.fixtures.waiting import wait_until
from tests.image.support import Container
from tests.upgrade import checks, history
from tests.upgrade.install import Install
from tests.upgrade.population import Creator, Population
from tests.upgrade.release import Release
from tests.upgrade.sampler import Sampler, list_all, problems

# The previous release stores and speaks only CREATED_AT; the working tree stores STORED_AT and
# still serves CREATED_AT (issue 23). The sampler reads at CREATED_AT: served before, during and
# after both phases (the schemas are identical, so what it reads is the same at either version).
CREATED_AT, STORED_AT = "v1alpha1", "v1beta1"
READY_TIMEOUT = 300.0
MIGRATION_TIMEOUT = 120.0


Mark = Callable[[str], None]  # names the step the test takes from now on


# Deviations of the previous release itself that a downgrade to it shows, by phase. 0.1.0 judges
# an account's instances before its account's first event after a start: for a second or two they
# read `Reconciling=True, AccountNotFound` (Ready stays True; nothing goes to the platform or a
# token Secret). 0.2.0 lists the accounts before its watches start (engine/accounts.py `loading`),
# and the upgrade phase tolerates nothing. The README's "Downgrading" says so.
KNOWN = {"downgrade": "Reconciling=True (AccountNotFound: "}


@dataclass
class Phase:
    """One upgrade or downgrade: what the test saw, and what it found wrong."""

    name: str
    sampler: Sampler
    stored: list[history.Stored]  # every write of the objects during the phase, from etcd
    marks: list[tuple[int, str]]  # (etcd revision, step) as the test went
    calls: checks.PlatformCalls
    token_writes: list[str]
    failures: list[str] = field(default_factory=list)
    tolerated: int = 0  # samples' violations of a known defect of the release run (KNOWN)
    known: str | None = None

    def step_at(self, revision: int) -> str:
        return [step for mark, step in self.marks if mark < revision][-1]

    def tolerate(self, known: str) -> None:
        """Leave out the violations and stored states' problems that are `known`, counted."""
        kept = [v for v in self.sampler.violations if known not in v.what]
        self.tolerated += len(self.sampler.violations) - len(kept)
        self.sampler.violations = kept
        self.known = known

    def stored_problems(self) -> list[str]:
        """Each stored state of an object that was not Ready and kstatus Current, or a deletion."""
        found = []
        for stored in self.stored:
            where = f"revision {stored.revision} [{self.step_at(stored.revision)}]"
            if stored.obj is None:
                found.append(f"{where} {stored.key}: deleted")
                continue
            found += [
                f"{where} {stored.object_key}: {problem}"
                for problem in problems(stored.obj)
                if self.known is None or self.known not in problem
            ]
        return found

    def tolerated_states(self) -> int:
        if self.known is None:
            return 0
        known = self.known
        return sum(1 for s in self.stored if s.obj is not None and any(known in p for p in problems(s.obj)))

    def __str__(self) -> str:
        written = {stored.key for stored in self.stored}
        return (
            f"{self.name}: {len(self.stored)} stored states of {len(written)} objects (etcd), "
            f"{len(self.stored_problems())} not Ready/Current; {self.sampler.samples} samples of "
            f"{len(self.sampler.expected)} objects (largest gap {self.sampler.max_gap:.2f}s, slowest "
            f"{self.sampler.slowest:.2f}s), {len(self.sampler.violations)} violations; {self.calls}; "
            f"{len(self.token_writes)} token Secret writes"
            + (
                f"; tolerated as 0.1.0's start-up race ({self.known!r}): {self.tolerated} violations, "
                f"{self.tolerated_states()} stored states"
                if self.known
                else ""
            )
        )


def instances_ready(container: Container) -> int:
    """How many ConnectorInstances the operator in `container` has found Ready since it started
    (its `oco_connectorinstances` gauge counts every object it has reconciled, by Ready)."""
    with urllib.request.urlopen(container.url("metrics", "/metrics"), timeout=5) as response:
        text = response.read().decode()
    ready = [
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "oco_connectorinstances"
        for sample in family.samples
        if sample.labels.get("ready") == "True"
    ]
    return int(sum(ready))


@dataclass
class Upgrade:
    """The test's parts: its cluster, platform, install, objects and the pod running now."""

    control_plane: ControlPlane
    api: client.ApiClient
    control: SimulatorControl
    install: Install
    population: Population | None = None
    pod: Container | None = None

    @property
    def objects(self) -> Population:
        assert self.population is not None
        return self.population

    def all_current(self) -> bool:
        items = list_all(self.api, CREATED_AT)
        return len(items) == len(self.objects.objects) and not any(problems(obj) for obj in items)

    def settled(self) -> bool:
        """The pod running now has reconciled every instance Ready, and every object is Current."""
        assert self.pod is not None
        return instances_ready(self.pod) == self.objects.instances and self.all_current()

    def migrated(self) -> bool:
        return all(versions == [STORED_AT] for versions in checks.stored_versions(self.api).values())

    def install_previous(self, release: Release) -> None:
        self.install.install(release.chart, release.image)
        self.pod = self.install.start_pod("oco-previous")

    def populate(self, creator: Creator, platform_headers: dict[str, str]) -> None:
        self.population = creator.create(platform_headers)
        wait_until(self.settled, timeout=READY_TIMEOUT, what="every object Ready and Current", interval=1)

    def _replace_pod(self, mark: Mark, name: str) -> None:
        assert self.pod is not None
        mark("the old pod stopping")
        self.install.stop_pod(self.pod)
        mark(f"{name} starting")
        self.pod = self.install.start_pod(name)
        mark(f"{name} reconciling")
        wait_until(self.settled, timeout=READY_TIMEOUT, what=f"{name}: every instance Ready", interval=1)

    def upgrade_steps(self, mark: Mark, chart: Path, image: str) -> None:
        mark("server-side apply of the new CRDs")
        self.install.apply_crds(chart)
        mark("helm upgrade to the new chart")
        self.install.upgrade(chart, image)
        self._replace_pod(mark, "oco-new")
        mark("storage migration")
        wait_until(
            self.migrated, timeout=MIGRATION_TIMEOUT, what=f"storedVersions [{STORED_AT}]", interval=0.5
        )

    def downgrade_steps(self, mark: Mark, release: Release) -> None:
        mark("helm upgrade to the previous chart (its CRDs not applied)")
        self.install.upgrade(release.chart, release.image)
        self._replace_pod(mark, "oco-previous-again")

    def phase(self, name: str, steps: Callable[[Mark], None]) -> Phase:
        """Baseline (the platform's log cleared, the token Secrets' versions, etcd's revision),
        `steps` under the sampler, then what changed since the baseline, judged."""
        core = client.CoreV1Api(self.api)
        self.control.reset_counters()
        before = checks.token_versions(core, self.objects.token_secrets)
        marks = [(history.revision(self.control_plane), "start")]
        sampler = Sampler(self.control_plane, self.objects.objects, CREATED_AT).start()

        def mark(step: str) -> None:
            sampler.mark(step)
            marks.append((history.revision(self.control_plane), step))

        failures = []
        try:
            steps(mark)
        except pytest.fail.Exception as error:  # a deadline: reported with the rest, the test goes on
            failures.append(f"{sampler.step}: {error}")
        finally:
            sampler.stop()
        phase = Phase(
            name, sampler, history.writes_since(self.control_plane, marks[0][0]), marks,
            checks.PlatformCalls.since_baseline(self.control),
            checks.changed(before, checks.token_versions(core, self.objects.token_secrets)), failures,
        )  # fmt: skip
        self._judge(phase)
        return phase

    def _judge(self, phase: Phase) -> None:
        """The assertions of both directions, gathered into `phase.failures`."""
        tolerated = KNOWN.get(phase.name)
        if tolerated is not None:
            phase.tolerate(tolerated)
        failures, count = phase.failures, len(self.objects.objects)
        if phase.calls.writes:
            failures.append(f"{len(phase.calls.writes)} platform writes: {phase.calls.writes[:10]}")
        if phase.token_writes:
            failures.append(f"{len(phase.token_writes)} token Secret writes: {phase.token_writes[:10]}")
        if phase.sampler.violations or phase.sampler.samples == 0:
            failures.append(f"in {phase.sampler.samples} samples, {phase.sampler.summary()}")
        stored_problems = phase.stored_problems()
        if stored_problems:
            failures.append(
                f"{len(stored_problems)} of {len(phase.stored)} stored states not Ready/Current:\n"
                + "\n".join(stored_problems[:15])
            )
        stored = checks.stored_versions(self.api)
        if any(versions != [STORED_AT] for versions in stored.values()):
            failures.append(f"storedVersions not [{STORED_AT}]: {stored}")
        in_etcd = history.stored_versions(self.control_plane)
        if in_etcd != {f"{GROUP}/{STORED_AT}": count}:
            failures.append(f"stored in etcd: {dict(in_etcd)}, not all {count} at {STORED_AT}")
        verdicts = checks.kstatus_verdicts(list_all(self.api, STORED_AT))
        not_current = {str(key): verdict for key, verdict in verdicts.items() if verdict != "Current"}
        if not_current or len(verdicts) != count:
            failures.append(f"kstatus of {len(verdicts)} objects, not Current: {not_current}")
