"""`authorize NAME`: a person's OAuth consent into the instance's authorization Secret, and (unless
`--no-wait`) what the operator made of it.

The steps: read the ConnectorInstance (an OAuth one, with spec.oauth.authorizationSecretRef);
wait for status.authorization.url if the operator has not written it yet; open it in a browser,
or print it; receive the provider's redirect and check its state (consent.py); write `code` and
`state` (or, for a denied consent, `error` and `state`) into the Secret, creating it with the
operator's watch label if it is missing; then wait until the operator has taken them out of the
Secret (it removes them once it used or refused them) and its status says Ready, or why not.

Secret values: this command sends the code to the API server and reads that one Secret back, whole
(there is no read of one key), to see whether the code is still in it; the comparison is made in
memory and no value is ever printed (the result names the keys written, not their values).
"""

from __future__ import annotations

import base64
import json
import sys
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from kubectl_openconnectors import actions, consent, names, objects, reads, render
from kubectl_openconnectors.actions import Check, Request
from kubectl_openconnectors.consent import Consent, Grant
from kubectl_openconnectors.errors import ExitCode, PluginError
from kubectl_openconnectors.kube import Kube, core_path
from kubectl_openconnectors.objects import Obj

METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# After the code left the Secret, a Stalled condition the object had before the write is taken as
# the verdict only once it has stayed this long: the operator may remove the code before it
# writes its status, and the old AuthorizationRequired read in between is no answer. A condition
# that changed is an answer at once.
SETTLE_SECONDS = 5.0
AUTHORIZATION_REASONS = (names.AUTHORIZATION_REQUIRED_REASON, names.REAUTHENTICATION_REQUIRED_REASON)
NOT_SHOWN = "(not shown)"
NOTHING = "nothing to authorize"


@dataclass(frozen=True)
class Choices:
    """The command's flags: where the redirect comes from, the browser, the waits."""

    listen: str | None = None
    paste: bool = False
    browser: bool = True
    wait: bool = True
    timeout: float = 300.0
    url_on_stdout: bool = True  # table output; with -o json|yaml stdout holds only the document


def authorize(kube: Kube, namespace: str, name: str, choices: Choices) -> Request:
    """The whole command; a refusal before anything is written is a PluginError."""
    if choices.listen and choices.paste:
        raise PluginError("--listen and --paste exclude each other", ExitCode.USAGE)
    listen = consent.address(choices.listen) if choices.listen else None  # refused before any read
    obj = reads.instance(kube, namespace, name)
    secret, callback = authorization_secret(obj)
    url, early = consent_url(kube, obj, choices.timeout)
    if early is not None:
        return early
    found = consent.consent(url, callback)
    grant = receive(found, choices, listen)
    before = signature(reads.instance(kube, namespace, name))  # as it is right before the write
    written = write(kube, namespace, secret, grant)
    taken = Taken(kube, core_path("secrets", namespace, secret), grant, before)
    request = Request("authorize", namespace, name, written, taken.check)
    return wait_for_operator(kube, request, taken, choices.timeout) if choices.wait else request


def authorization_secret(obj: Obj) -> tuple[str, str]:
    """(the authorization Secret's name, spec.oauth.callbackURL), or why this object has none."""
    oauth = objects.spec(obj).get("oauth")
    where = f"{names.INSTANCE_KIND} {objects.meta(obj).get('namespace')}/{objects.meta(obj).get('name')}"
    if not isinstance(oauth, dict):
        raise PluginError(f"{where} has no spec.oauth: it is not an OAuth connector", ExitCode.USAGE)
    ref = oauth.get("authorizationSecretRef") or {}
    if not ref.get("name"):
        raise PluginError(
            f"{where} takes its grant from a refresh token (spec.oauth.refreshTokenSecretRef), not from a "
            "consent: put a new refresh token into that Secret instead",
            ExitCode.USAGE,
        )
    return str(ref["name"]), str(oauth.get("callbackURL") or "")


def _url(obj: Obj) -> str:
    found = objects.status(obj).get("authorization")
    return str(found.get("url") or "") if isinstance(found, dict) else ""


def consent_url(kube: Kube, obj: Obj, timeout: float) -> tuple[str, Request | None]:
    """status.authorization.url, waited for up to `timeout`; or the report that ends the command
    there: Ready without a URL (nothing to authorize), stalled for another reason, timed out."""
    meta = objects.meta(obj)
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    seen: list[str] = []

    def check(current: Obj) -> Check:
        seen[:] = [_url(current)]
        stalled = objects.condition(current, "Stalled")
        if seen[0]:
            return Check("handled")
        if objects.is_true(current, "Ready"):
            instance = objects.status(current).get("instanceID")
            return Check("handled", f"Ready (instance {instance}), no status.authorization.url: {NOTHING}")
        if stalled.get("status") == "True" and stalled.get("reason") not in AUTHORIZATION_REASONS:
            return Check("failed", f"{stalled.get('reason')}: {stalled.get('message')}")
        return Check("pending")

    if not _url(obj) and not objects.is_true(obj, "Ready"):
        click.echo(f"waiting up to {timeout:g}s for the operator to write status.authorization.url", err=True)
    request = actions.wait(kube, Request("authorize", namespace, name, {}, check), timeout)
    if request.result == "handled" and seen and seen[0]:
        return seen[0], None
    if request.result == "timeout":
        request.message = (
            f"the operator wrote no status.authorization.url within {timeout:g}s (is it running? "
            f"kubectl openconnectors why {name} -n {namespace})"
        )
    return "", request


# The redirect


def receive(found: Consent, choices: Choices, listen: consent.Address | None) -> Grant:
    """The grant, from a loopback listener (--listen, or the callback's own loopback address) or
    from a pasted line (--paste, or a callback that is not a loopback http URL)."""
    expected = consent.callback_address(found.callback)
    where = listen or (None if choices.paste else expected)
    if listen and listen != expected:
        click.echo(
            f"warning: the callback URL is {render.safe(found.callback, render.MESSAGE_LIMIT)}: the provider "
            f"sends the browser there, not to --listen {where}; the redirect reaches this command only "
            "if something forwards it",
            err=True,
        )
    if where is None:
        show(found.url, choices)
        click.echo(
            "Paste the whole address your browser was redirected to, then Enter (it is not printed again):",
            err=True,
        )
        return consent.paste(sys.stdin, found.state)
    path = consent.callback_path(found.callback)
    with consent.Listener(where, path, found.state, _warn) as heard:
        show(found.url, choices)
        click.echo(f"waiting up to {choices.timeout:g}s for the redirect on http://{where}{path}", err=True)
        return heard.wait(choices.timeout)


def _warn(text: str) -> None:
    click.echo(f"warning: {text}", err=True)


def show(url: str, choices: Choices) -> None:
    """Open the consent page, else print its URL: one line on stdout (a script reads it there),
    or stderr with -o json|yaml. consent.consent let through visible ASCII only: printed as is."""
    if choices.browser and _open(url):
        click.echo(f"Opened the consent page in a browser. If none appeared, open: {url}", err=True)
        return
    if choices.browser:
        click.echo("warning: no browser could be opened: open this URL yourself", err=True)
    click.echo(url, err=not choices.url_on_stdout)


def _open(url: str) -> bool:
    try:
        return webbrowser.open(url, new=1)
    except webbrowser.Error:
        return False


# The Secret


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def values(grant: Grant) -> dict[str, str | None]:
    """The keys to write, base64 as in `data`; None removes the other of code and error."""
    if grant.error is not None:
        return {names.ERROR_KEY: _b64(grant.error), names.STATE_KEY: _b64(grant.state), names.CODE_KEY: None}
    assert grant.code is not None
    return {names.CODE_KEY: _b64(grant.code), names.STATE_KEY: _b64(grant.state), names.ERROR_KEY: None}


def write(kube: Kube, namespace: str, secret: str, grant: Grant) -> dict[str, Any]:
    """Create the Secret (Opaque, with the operator's watch label), or merge-patch its data: its
    other keys stay. Its existence and labels are read as metadata. Returns what the result shows."""
    path = core_path("secrets", namespace, secret)
    data = values(grant)
    label = {names.WATCH_LABEL: names.WATCH_INPUT}
    try:
        labels = objects.meta(kube.get(path, accept=METADATA)).get("labels") or {}
    except PluginError as error:
        if error.code is not ExitCode.NOT_FOUND:
            raise
        metadata = {"name": secret, "namespace": namespace, "labels": label}
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata}
        kube.create(core_path("secrets", namespace), {**body, "data": {k: v for k, v in data.items() if v}})
        return _written(secret, grant, removed=False)
    patch: dict[str, Any] = {"data": data}
    if names.WATCH_LABEL not in labels:  # a label someone set otherwise is theirs to keep
        patch["metadata"] = {"labels": label}
    kube.merge_patch(path, patch)
    return _written(secret, grant, removed=True)


def _written(secret: str, grant: Grant, *, removed: bool) -> dict[str, Any]:
    kept, gone = (names.ERROR_KEY, names.CODE_KEY) if grant.error else (names.CODE_KEY, names.ERROR_KEY)
    written: dict[str, Any] = {"Secret": secret, kept: grant.error or NOT_SHOWN, names.STATE_KEY: "(matched)"}
    return {**written, gone: None} if removed else written


# What the operator made of it


def signature(obj: Obj) -> str:
    """Ready, Stalled and status.authorization as they are: a change of any is the operator's answer."""
    kept = [c for c in objects.conditions(obj) if c.get("type") in ("Ready", "Stalled")]
    return json.dumps([kept, objects.status(obj).get("authorization")], sort_keys=True)


@dataclass
class Taken:
    """The check of the wait: has the operator taken the grant out of the Secret, and then what
    does its status say. `note` is the latest "not yet", for a timeout's message."""

    kube: Kube
    path: str
    grant: Grant
    before: str
    clock: Callable[[], float] = time.monotonic
    taken_at: float | None = None
    note: str = ""
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = names.ERROR_KEY if self.grant.error else names.CODE_KEY

    def check(self, obj: Obj) -> Check:
        if self.still_written():
            stalled = objects.condition(obj, "Stalled")
            if (
                stalled.get("status") == "True"
                and stalled.get("reason") not in AUTHORIZATION_REASONS
                and signature(obj) != self.before
            ):
                # Stalled for another reason (a rejected configuration, say): the operator keeps a
                # code it did not send, and that is its answer.
                return Check("failed", f"{stalled.get('reason')}: {stalled.get('message')}")
            self.note = f"the {self.key} is still in the Secret: the operator has not taken it (does it run?)"
            return Check("pending")
        if self.taken_at is None:
            self.taken_at = self.clock()
        return self.judge(obj)

    def still_written(self) -> bool:
        try:
            data = self.kube.get(self.path).get("data") or {}
        except PluginError as error:
            if error.code is not ExitCode.NOT_FOUND:
                raise
            return False  # deleted: nothing of it is left to take
        return bool(data.get(self.key) == values(self.grant)[self.key])

    def judge(self, obj: Obj) -> Check:
        if objects.is_true(obj, "Ready"):
            instance = objects.status(obj).get("instanceID")
            return Check("handled", f"Ready, instance {instance}" if instance is not None else "Ready")
        stalled = objects.condition(obj, "Stalled")
        said = f"{stalled.get('reason')}: {stalled.get('message')}"
        settled = self.taken_at is not None and self.clock() - self.taken_at >= SETTLE_SECONDS
        if stalled.get("status") == "True" and (signature(obj) != self.before or settled):
            return Check("failed", said)
        ready = objects.condition(obj, "Ready")
        self.note = (
            f"the operator took the {self.key} from the Secret and is not Ready yet (Ready "
            f"{ready.get('status', 'Unknown')}: {ready.get('reason')}: {ready.get('message')})"
        )
        return Check("pending")


def wait_for_operator(kube: Kube, request: Request, taken: Taken, timeout: float) -> Request:
    waited = actions.wait(kube, request, timeout, taken.clock)
    if waited.result == "timeout":
        waited.message = f"{taken.note}; not handled within {timeout:g}s"
    return waited
