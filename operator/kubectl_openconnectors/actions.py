"""The day-2 actions: write what the README documents, and (`--wait`) see the operator handle it.

- reconcile: a new value of `openconnectors.io/reconcile-requested-at`; handled when
  `status.lastHandledReconcileAt` equals it (a pass reached the platform).
- pause / resume: `openconnectors.io/paused: "true"` set or removed; handled when the Synced
  condition says `Paused`, or no longer does.
- adopt: a new object with `spec.instanceID` (it is set when an object is created and never
  changes: the CRD refuses it later), from a manifest; handled when Ready with that instance ID.
  An object of that name that already has this ID is only waited for: nothing is written, and
  `--take-over-from` is refused there (README, "Moving and rebuilding", documents the annotation
  on the object that adopts, as it is created; an existing one stalled in `AdoptionConflict` is
  annotated with kubectl, as its condition says, which the refusal names).

Each returns a `Request`, whose `check` tells from the object as read whether the operator has
handled it, has refused it (a stall, or a state in which it never will), or not yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from kubectl_openconnectors import names, objects
from kubectl_openconnectors.errors import ExitCode, PluginError
from kubectl_openconnectors.kube import Kube, custom_path
from kubectl_openconnectors.objects import Obj

State = Literal["pending", "handled", "failed"]
POLL_INTERVAL = 0.5  # a command waiting for a person's request; the deadline is --timeout
RESULT_CODES = {
    "requested": ExitCode.OK,
    "handled": ExitCode.OK,
    "failed": ExitCode.NOT_READY,
    "timeout": ExitCode.TIMEOUT,
}


@dataclass(frozen=True)
class Check:
    state: State
    message: str = ""


@dataclass
class Request:
    action: str
    namespace: str
    name: str
    written: dict[str, Any]
    check: Callable[[Obj], Check]
    result: str = "requested"
    message: str = ""
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": names.INSTANCE_KIND,
            "namespace": self.namespace,
            "name": self.name,
            "written": self.written,
            "result": self.result,
            "message": self.message,
            "seconds": self.seconds,
        }

    @property
    def code(self) -> ExitCode:
        return RESULT_CODES[self.result]


def _annotate(kube: Kube, namespace: str, name: str, values: dict[str, str | None]) -> Obj:
    """A merge patch of the annotations only (the object must exist: a patch never creates)."""
    path = custom_path(names.INSTANCE_PLURAL, namespace, name)
    return kube.merge_patch(path, {"metadata": {"annotations": values}})


def reconcile(kube: Kube, namespace: str, name: str) -> Request:
    value = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    _annotate(kube, namespace, name, {names.RECONCILE_REQUEST_ANNOTATION: value})

    def check(obj: Obj) -> Check:
        if objects.status(obj).get("lastHandledReconcileAt") == value:
            return Check("handled", "a full pass with a platform check handled the request")
        if objects.paused(obj):
            return Check("failed", "the object is paused: the request is handled once it is resumed")
        return Check("pending")

    return Request("reconcile", namespace, name, {names.RECONCILE_REQUEST_ANNOTATION: value}, check)


def pause(kube: Kube, namespace: str, name: str) -> Request:
    _annotate(kube, namespace, name, {names.PAUSED_ANNOTATION: "true"})

    def check(obj: Obj) -> Check:
        if _synced_reason(obj) == names.PAUSED_REASON:
            return Check("handled", "paused: no platform call and no token Secret write until resumed")
        return Check("pending")

    return Request("pause", namespace, name, {names.PAUSED_ANNOTATION: "true"}, check)


def resume(kube: Kube, namespace: str, name: str) -> Request:
    _annotate(kube, namespace, name, {names.PAUSED_ANNOTATION: None})

    def check(obj: Obj) -> Check:
        if not objects.paused(obj) and _synced_reason(obj) != names.PAUSED_REASON:
            return Check("handled", "resumed")
        return Check("pending")

    return Request("resume", namespace, name, {names.PAUSED_ANNOTATION: None}, check)


def _synced_reason(obj: Obj) -> str:
    return str(objects.condition(obj, "Synced").get("reason") or "")


# Adoption


@dataclass(frozen=True)
class Adoption:
    namespace: str
    name: str
    instance_id: int
    manifest: Obj
    take_over_from: str | None = None


def adopt(kube: Kube, adoption: Adoption) -> Request:
    """Create the object from the manifest with `spec.instanceID`; an object of that name that
    already adopts this ID is waited for and nothing is written, any other is refused
    (instanceID never changes)."""
    body = adoption_body(adoption)
    check = _adopted(adoption.instance_id)
    if _existing(kube, adoption) is not None:
        request = Request("adopt", adoption.namespace, adoption.name, {}, check)
        request.message = f"already exists with spec.instanceID {adoption.instance_id}: nothing written"
        return request
    kube.create(custom_path(names.INSTANCE_PLURAL, adoption.namespace), body)
    written: dict[str, Any] = {"spec.instanceID": adoption.instance_id}
    if adoption.take_over_from:
        written[names.TAKE_OVER_ANNOTATION] = adoption.take_over_from
    return Request("adopt", adoption.namespace, adoption.name, written, check)


def _adopted(instance_id: int) -> Callable[[Obj], Check]:
    def check(obj: Obj) -> Check:
        if objects.is_true(obj, "Stalled"):
            stalled = objects.condition(obj, "Stalled")
            return Check("failed", f"{stalled.get('reason')}: {stalled.get('message')}")
        if objects.status(obj).get("instanceID") == instance_id and objects.is_true(obj, "Ready"):
            return Check("handled", f"Ready, managing instance {instance_id}")
        return Check("pending")

    return check


def _existing(kube: Kube, adoption: Adoption) -> Obj | None:
    try:
        found: Obj = kube.get(custom_path(names.INSTANCE_PLURAL, adoption.namespace, adoption.name))
    except PluginError as error:
        if error.code is ExitCode.NOT_FOUND:
            return None
        raise
    where = f"{names.INSTANCE_KIND} {adoption.namespace}/{adoption.name}"
    if objects.spec(found).get("instanceID") != adoption.instance_id:
        raise PluginError(
            f"{where} already exists, and spec.instanceID is set when an object is created and never "
            "changes. To move an instance to a new object, delete the old one with deletionPolicy "
            "Orphan, then adopt from a new object (README, Moving and rebuilding)",
            ExitCode.USAGE,
        )
    if adoption.take_over_from:
        # The annotation is documented on the object that adopts, as it is created; writing it
        # onto an existing one is a change of that object the user should make knowingly.
        raise PluginError(
            f"{where} already exists with spec.instanceID {adoption.instance_id}: adopt writes nothing "
            "to an existing object and does not add --take-over-from to it. If it is stalled with "
            "AdoptionConflict and the object it names is gone, annotate it as its condition says: "
            f"kubectl annotate {names.INSTANCE_PLURAL} {adoption.name} -n {adoption.namespace} "
            f"{names.TAKE_OVER_ANNOTATION}={adoption.take_over_from}",
            ExitCode.USAGE,
        )
    return found


def adoption_body(adoption: Adoption) -> Obj:
    """The manifest as a new object named NAME with spec.instanceID, or a usage error saying why not."""
    manifest = adoption.manifest
    if manifest.get("kind") != names.INSTANCE_KIND or manifest.get("apiVersion") not in names.API_VERSIONS:
        raise PluginError(
            f"the manifest must be one {names.API_VERSION} {names.INSTANCE_KIND}", ExitCode.USAGE
        )
    meta, spec = objects.meta(manifest), objects.spec(manifest)
    for key, wanted in (("name", adoption.name), ("namespace", adoption.namespace)):
        if meta.get(key) not in (None, wanted):
            raise PluginError(
                f"the manifest's metadata.{key} is {meta[key]!r}, not {wanted!r}", ExitCode.USAGE
            )
    if spec.get("instanceID") not in (None, adoption.instance_id):
        raise PluginError(f"the manifest's spec.instanceID is {spec['instanceID']}", ExitCode.USAGE)
    annotations = dict(meta.get("annotations") or {})
    if adoption.take_over_from:
        annotations[names.TAKE_OVER_ANNOTATION] = adoption.take_over_from
    kept = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
    metadata = {**kept, "name": adoption.name, "namespace": adoption.namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.INSTANCE_KIND,
        "metadata": metadata,
        "spec": {**spec, "instanceID": adoption.instance_id},
    }


# Waiting


def wait(
    kube: Kube, request: Request, timeout: float, clock: Callable[[], float] = time.monotonic
) -> Request:
    """Poll the object until its check says handled or failed, or `timeout` seconds pass."""
    started = clock()
    path = custom_path(names.INSTANCE_PLURAL, request.namespace, request.name)
    last = Check("pending")
    while True:
        try:
            last = request.check(kube.get(path))
        except PluginError as error:
            if error.code is not ExitCode.NOT_FOUND:
                raise
            last = Check("failed", "the object is gone")
        request.seconds = round(clock() - started, 3)
        if last.state != "pending":
            request.result, request.message = last.state, _after(request.message, last.message)
            return request
        if clock() - started >= timeout:
            request.result = "timeout"
            request.message = _after(request.message, f"not handled within {timeout:g}s")
            return request
        time.sleep(POLL_INTERVAL)


def _after(said: str, message: str) -> str:
    """What the request said when it was made (nothing written, say), then what became of it."""
    return f"{said}; {message}" if said else message
