"""The operator's kopf shell and passes in this process, with the test playing kopf.

What kopf does for the operator (list the objects and the labelled Secrets, keep its indexes with
the operator's own index handlers, hand each event to the event handler, add and remove the
finalizer, run the delete handler) is done here, on demand, against the real API server; the
passes run when the test says so (`run`), not on the scheduler's clock. The Runtime is the one
`assemble` builds for the operator, with an Events sink that records. What needs a process
boundary (signals, restarts, peering, the image, the CLI) stays in tests/integration. A restart
with other settings (flags) is `restart`: a new Runtime, as a new process would have. A user's
annotation (pause, reconcile now) is `annotate`; an account's daemon is played by `account`, its
verdict once.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
import pytest
from kubernetes import client

from connector_operator.api.account import AccountKind
from connector_operator.api.names import (
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_PLURAL,
    FINALIZER,
    GROUP,
    PLURAL,
    VERSION,
    WATCH_LABEL,
)
from connector_operator.domain.accounts import AccountKey
from connector_operator.domain.outcome import Outcome
from connector_operator.engine.deleteretry import DELETE_HANDLER, PROGRESS_FIELD
from connector_operator.engine.wakeups import Key
from connector_operator.handlers import accounts, instances, liveobjects, secrets
from connector_operator.kube.api import KubeError
from connector_operator.reconciler import instance
from connector_operator.reconciler.account import account_pass
from connector_operator.reconciler.runtime import Runtime
from tests.fixtures.operator import Instances
from tests.fixtures.runtime import Events
from tests.fixtures.simulator import SimulatorHandle
from tests.fixtures.waiting import eventually
from tests.integration.support import closeio_spec, ready_inputs

Index = dict[Any, list[Any]]
# kopf's decorators retype each handler as kopf's callback protocol, every keyword kopf may pass
# required; like kopf, the stand-in passes by name the ones the handler takes (`_call`).
Handler = Callable[..., Awaitable[Any]]


@dataclass
class Indexes:
    """kopf's indexes: one dict each for the operator's lifetime, refilled in place."""

    secret_cache: Index = field(default_factory=dict)
    secret_users: Index = field(default_factory=dict)
    instance_refs: Index = field(default_factory=dict)
    account_users: Index = field(default_factory=dict)

    def kwargs(self) -> dict[str, Index]:
        return {
            "secret_cache": self.secret_cache,
            "secret_users": self.secret_users,
            "instance_refs": self.instance_refs,
            "account_users": self.account_users,
        }


@dataclass
class Operator:
    runtime: Runtime
    events: Events
    instances: Instances
    core: client.CoreV1Api
    namespace: str
    simulator: SimulatorHandle
    boot: Callable[..., Runtime]  # the Runtime `assemble` builds with these settings, scheduler paused
    indexes: Indexes = field(default_factory=Indexes)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)  # last bodies, for DELETED

    @property
    def memo(self) -> dict[str, Any]:
        return {"runtime": self.runtime}

    async def _list(self, path: str) -> list[dict[str, Any]]:
        """A LIST, retried as kopf retries its watch while the API server answers 429 (it does
        while it rebuilds a CRD's storage after a CRD update, longer on a loaded machine)."""
        kube = self.runtime.kube
        assert kube is not None

        async def listed() -> dict[str, Any] | None:
            try:
                return await kube.request("GET", path) or {"items": []}
            except KubeError as error:
                if error.status != 429:
                    raise
                return None

        found = await eventually(listed, 30, f"the API server to serve {path}", interval=0.2)
        return list(found.get("items") or [])

    async def index(self) -> None:
        """List and index as kopf does before it hands out an event: the labelled Secrets (the
        watch's label selector) and every ConnectorInstance of the namespace."""
        ns = self.namespace
        found = await self._list(f"/api/v1/namespaces/{ns}/secrets?labelSelector={WATCH_LABEL}")
        objects = await self._list(f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}")
        cache: Index = {}
        for raw in found:
            meta = raw["metadata"]
            entry = await _call(
                secrets.secret_cache, namespace=ns, name=meta["name"], body=_body(raw), memo=self.memo
            )
            _add(cache, entry)
        users: Index = {}
        refs: Index = {}
        account_users: Index = {}
        for raw in objects:
            body, meta = _body(raw), raw["metadata"]
            name, uid = meta["name"], meta["uid"]
            _add(users, await _call(secrets.secret_users, namespace=ns, name=name, spec=body.spec, body=body))
            _add(refs, await _call(liveobjects.instance_refs, namespace=ns, name=name, uid=uid, body=body))
            _add(
                account_users,
                await _call(
                    accounts.account_users, namespace=ns, name=name, spec=body.spec, body=body, memo=self.memo
                ),
            )
        for kept, fresh in (
            (self.indexes.secret_cache, cache),
            (self.indexes.secret_users, users),
            (self.indexes.instance_refs, refs),
            (self.indexes.account_users, account_users),
        ):
            kept.clear()
            kept.update(fresh)

    async def event(self, name: str) -> dict[str, Any] | None:
        """The object's latest event, as kopf delivers it: the finalizer added at first sight, the
        indexes up to date, then the event handler. DELETED once the object is gone."""
        body = self.instances.get(name)
        meta = body["metadata"] if body is not None else {}
        unseen = FINALIZER not in meta.get("finalizers", []) and "deletionTimestamp" not in meta
        if body is not None and unseen:
            finalizers = [*meta.get("finalizers", []), FINALIZER]
            self.instances.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, {"metadata": {"finalizers": finalizers}}
            )
            body = self.instances.get(name)
        await self.index()
        kind = "MODIFIED" if body is not None else "DELETED"
        raw = body if body is not None else self.deleted.get(name)
        if raw is None:
            return None
        if body is not None:
            self.deleted[name] = body
        await self._deliver(kind, raw)
        return body

    async def _deliver(self, kind: str, raw: dict[str, Any]) -> None:
        await _call(
            instances.instance_changed, type=kind, body=_body(raw), memo=self.memo, **self.indexes.kwargs()
        )

    async def late_deleted(self, body: dict[str, Any]) -> None:
        """The DELETED event of an object already gone, delivered now: kopf handles each uid on a
        worker of its own, so the end of an object deleted and made again under its name may come
        after the new one's first events. `body` is the old object's last (`deleted[name]`)."""
        await self.index()
        await self._deliver("DELETED", body)

    async def run(self, name: str) -> float:
        """One pass over the object after its latest event; the seconds until the next is due."""
        await self.event(name)
        return await instance.run_pass(self.runtime, (self.namespace, name))

    async def until(
        self, name: str, check: Callable[[dict[str, Any]], bool], *, passes: int = 5, what: str = "that"
    ) -> dict[str, Any]:
        """Passes until the stored object satisfies `check` (each pass after the latest event)."""
        obj: dict[str, Any] | None = None
        for _ in range(passes):
            await self.run(name)
            obj = self.instances.get(name)
            if obj is not None and check(obj):
                return obj
        pytest.fail(f"{name}: not {what} after {passes} passes; status: {(obj or {}).get('status')}")

    async def condition(
        self, name: str, type_: str, status: str, *, reason: str | None = None, passes: int = 5
    ) -> dict[str, Any]:
        def matches(obj: dict[str, Any]) -> bool:
            found = _condition(obj, type_)
            return found is not None and found["status"] == status and reason in (None, found.get("reason"))

        obj = await self.until(name, matches, passes=passes, what=f"{type_}={status} ({reason})")
        found = _condition(obj, type_)
        assert found is not None
        return found

    async def ready(self, name: str, *, passes: int = 5) -> dict[str, Any]:
        await self.condition(name, "Ready", "True", passes=passes)
        obj = self.instances.get(name)
        assert obj is not None
        return obj

    async def delete(self, name: str) -> kopf.TemporaryError | None:
        """`kubectl delete` and kopf's delete handler once: the finalizer is removed when the
        handler returns; its TemporaryError (kopf would retry) is returned."""
        body = await self.event(name)
        assert body is not None, f"{name} does not exist"
        self.instances.delete(name)
        return await self.retry_delete(name)

    async def retry_delete(self, name: str) -> kopf.TemporaryError | None:
        """kopf running the delete handler of an object being deleted (again); a TemporaryError
        is recorded in the handler's progress as kopf does (`delete_waits`)."""
        body = await self.event(name)
        assert body is not None, f"{name} is gone"
        meta = body["metadata"]
        try:
            await _call(
                instances.delete_instance,
                namespace=self.namespace,
                name=name,
                uid=meta["uid"],
                body=_body(body),
                memo=self.memo,
                secret_cache=self.indexes.secret_cache,
            )
        except kopf.TemporaryError as error:
            self._record_delay(name, _progress(body), error)
            return error
        finalizers = [f for f in meta.get("finalizers", []) if f != FINALIZER]
        self.instances.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"metadata": {"finalizers": finalizers}}
        )
        await self.event(name)  # DELETED
        return None

    def _record_delay(self, name: str, record: dict[str, Any], error: kopf.TemporaryError) -> None:
        """kopf's record of a handler that asked to be retried, `status.kopf.progress.<id>`: the
        message, the retry count, and `delayed`, when it runs again. The operator ends the delay
        early by removing `delayed` (engine/deleteretry.py), which kopf's next cycle honours."""
        now = datetime.datetime.now(datetime.UTC)
        delayed = now + datetime.timedelta(seconds=error.delay or 0)
        entry = {
            "started": record.get("started") or now.isoformat(timespec="microseconds"),
            "delayed": delayed.isoformat(timespec="microseconds"),
            "purpose": "delete",
            "retries": int(record.get("retries") or 0) + 1,
            "message": str(error),
        }
        patch: dict[str, Any] = {DELETE_HANDLER: entry}
        for part in reversed(PROGRESS_FIELD):
            patch = {part: patch}
        self.instances.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURAL, name, patch
        )

    def delete_progress(self, name: str) -> dict[str, Any]:
        """kopf's progress record of the object's delete handler ({} when there is none)."""
        return _progress(self.instances.get(name) or {})

    def delete_waits(self, name: str) -> bool:
        """Whether kopf still waits out the delete handler's delay before running it again (the
        record's `delayed`; present until the delay ends or the operator ends it)."""
        return bool(self.delete_progress(name).get("delayed"))

    def annotate(self, name: str, annotations: Mapping[str, str | None]) -> None:
        """A user's change of the object's annotations (None removes one), as `kubectl annotate`
        makes it. The pause and the reconcile request are such annotations, nothing more: the next
        `run` delivers the change as kopf would, and its pass sees it."""
        patch = {"metadata": {"annotations": dict(annotations)}}
        self.instances.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch
        )

    async def account(self, name: str, kind: AccountKind = AccountKind.CLUSTER_CONNECTOR_ACCOUNT) -> Outcome:
        """The account's verdict on its spec and Secret as they are now (reconciler/account.py
        `account_pass`, as the account's kopf daemon runs it after a change of the account: the
        secrets verified with one platform call). What its instances use of it (`runtime.accounts`)
        is then what the daemon keeps. The daemon's loop around it (the status it writes, the
        instances it wakes, its clock) is tests/integration/test_accounts.py's."""
        scoped = kind is AccountKind.CONNECTOR_ACCOUNT
        key = AccountKey(kind, self.namespace if scoped else "", name)
        custom = self.instances.custom
        if scoped:
            body = custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, ACCOUNT_PLURAL, name)
        else:
            body = custom.get_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, name)
        spec = dict(body.get("spec") or {})
        return await account_pass(self.runtime, key, spec, self.runtime.accounts.state(key), known=None)

    async def create_ready(self, **spec: Any) -> dict[str, Any]:
        """The inputs, a Close.io ConnectorInstance named `crm`, and the object once its first pass
        made it Ready (the integration tests' `Env.create_ready`)."""
        ready_inputs(self.core, self.namespace, self.simulator)
        self.instances.create("crm", closeio_spec(**spec))
        return await self.ready("crm", passes=1)

    async def stop(self) -> None:
        """What the operator's shutdown closes of its Runtime: the Secret waits, the platform client."""
        await self.runtime.waits.close()
        await self.runtime.instances.aclose()

    async def restart(self, **settings: object) -> None:
        """The operator stopped and started again with these settings (as `start_operator(flags)`:
        over the tier's defaults; the `settings` marker's were the first start's only). Nothing of
        the old process stays: a new Runtime, kopf's indexes and last bodies gone; the cluster and
        the platform keep what they hold."""
        await self.stop()
        self.runtime = self.boot(**settings)
        self.indexes = Indexes()
        self.deleted.clear()

    def key(self, name: str) -> Key:
        return (self.namespace, name)


async def _call(handler: object, **kwargs: Any) -> Any:
    return await cast(Handler, handler)(**kwargs)


def _body(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, raw))


def _add(index: Index, entry: dict[Any, Any]) -> None:
    for key, value in entry.items():
        index.setdefault(key, []).append(value)


def _progress(obj: dict[str, Any]) -> dict[str, Any]:
    record: Any = obj
    for part in (*PROGRESS_FIELD, DELETE_HANDLER):
        record = record.get(part) if isinstance(record, dict) else None
    return record if isinstance(record, dict) else {}


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)
