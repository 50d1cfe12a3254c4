"""Ownership (issue 18): whose a remote instance is, proven on the platform and never read from status.

These run the real `RemotePass`, `reconcile` and deletion code in process, against a platform
double that keeps instances with their tags and logs every call: the lowest tier that shows which
calls a forged status, a take-over, a rebuild or an observed instance lead to. The same rules on
the real API server, the simulator and the operator as a process: tests/integration/test_ownership.py
and test_rebuild.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from connector_operator.api.meta import Meta
from connector_operator.api.spec import parse_spec
from connector_operator.domain.desired import Keyed, desired_instance
from connector_operator.domain.ownership import Identity, claim_tag, identity_tag, is_cluster_name, strays
from connector_operator.domain.transition import Facts, parse_status
from connector_operator.engine.accounts import Accounts
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials, Instance
from connector_operator.reconciler import deletecalls, deletion
from connector_operator.reconciler.remote import RemotePass
from connector_operator.reconciler.runtime import Runtime
from connector_operator.settings import Settings
from tests.fixtures.runtime import Events, build_runtime

URL = "https://api.openconnectors.us2.ext.hana.ondemand.com/elements/api-v2"
ME, VICTIM, OLD = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002", "old-uid"
SPEC = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "acct"}}


# --- the tags -------------------------------------------------------------------------------------


def test_an_instance_is_owned_by_its_uid_tag_or_its_claim_and_nothing_else() -> None:
    me = Identity(ME, "team-a", "crm", cluster="prod")
    assert me.tags() == [identity_tag(ME), "k8s-object:team-a/crm", "k8s-claim:prod/team-a/crm"]
    assert me.owns([identity_tag(ME)])
    assert me.owns([identity_tag(OLD), claim_tag("prod", "team-a", "crm")])  # the object before a rebuild
    assert not me.owns(["k8s-object:team-a/crm"])  # a label for humans, never proof
    assert not me.owns([claim_tag("staging", "team-a", "crm")])
    assert not Identity(ME, "team-a", "crm").owns([claim_tag("prod", "team-a", "crm")])  # no cluster name


def test_other_objects_marks_are_foreign_unless_the_claim_is_ours() -> None:
    me = Identity(ME, "team-a", "crm", cluster="prod")
    assert me.foreign([identity_tag(ME), identity_tag(VICTIM), "crm"]) == [identity_tag(VICTIM)]
    assert me.foreign([identity_tag(OLD), claim_tag("prod", "team-a", "crm")]) == []
    assert me.foreign([claim_tag("prod", "team-b", "crm")]) == [claim_tag("prod", "team-b", "crm")]
    # Marks are compared as returned: decoding entities would turn a tenant's tag into a mark.
    assert not Identity(ME, "a", "b").owns([identity_tag(ME).replace("-", "&#45;")])
    # Two UIDs or two claims on one instance are never the operator's doing: nobody's.
    assert not me.owns([identity_tag(ME), identity_tag(VICTIM)])
    assert not me.owns(
        [identity_tag(OLD), claim_tag("prod", "team-a", "crm"), claim_tag("prod", "team-b", "x")]
    )
    assert me.foreign(
        [identity_tag(OLD), claim_tag("prod", "team-a", "crm"), claim_tag("prod", "b", "x")]
    ) == [
        identity_tag(OLD),
        claim_tag("prod", "b", "x"),
    ]


def test_orphan_removes_exactly_this_objects_marks() -> None:
    me = Identity(ME, "team-a", "crm", cluster="prod")
    assert me.released(["crm", *me.tags(), identity_tag(VICTIM)]) == ["crm", identity_tag(VICTIM)]


def test_a_cluster_name_is_a_dns_label() -> None:
    assert is_cluster_name("prod-eu-1")
    for bad in ("", "Prod", "a/b", "-a", "a" * 64, "a.b"):
        assert not is_cluster_name(bad)


def test_strays_are_marked_instances_of_no_live_object() -> None:
    live_uids, live_objects = {ME}, {("team-a", "crm")}
    listed = [
        (1, [identity_tag(ME)]),  # live
        (2, [identity_tag(OLD)]),  # stray: no object has this UID
        (3, [identity_tag(OLD), claim_tag("prod", "team-a", "crm")]),  # claimed by a live object
        (4, [identity_tag(OLD), claim_tag("prod", "team-a", "gone")]),  # stray
        (5, [identity_tag(OLD), claim_tag("other", "team-a", "gone")]),  # another cluster's
        (6, ["crm"]),  # no marks: not this operator's
    ]
    found = strays(listed, live_uids.__contains__, lambda ns, n: (ns, n) in live_objects, "prod")
    assert found == [2, 4]
    # Without a cluster name a claimed instance cannot be judged.
    assert strays(listed, live_uids.__contains__, lambda ns, n: False, None) == [2]


# --- the passes ---------------------------------------------------------------------------------


class Platform:
    """The platform as the client shows it: instances with tags, and a log of every call."""

    def __init__(self, *instances: Instance) -> None:
        self.store = {i.id: i for i in instances}
        self.calls: list[tuple[str, int | str]] = []
        self.next_id = 500

    def on_success(self, _: Any) -> None:
        pass

    async def get(self, url: str, credentials: Any, instance_id: int, **_: Any) -> Instance:
        self.calls.append(("GET", instance_id))
        if instance_id not in self.store:
            raise errors.NotFound(404, "no such instance")
        return self.store[instance_id]

    async def find_by_tag(self, url: str, credentials: Any, tag: str, **_: Any) -> list[Instance]:
        self.calls.append(("search", tag))
        return [i for i in self.store.values() if tag in i.tags]

    async def find_tagged_with_prefix(self, *_: Any, **__: Any) -> list[tuple[int, list[str]]]:
        self.calls.append(("listing", ""))
        return [(i.id, [t for t in i.tags if t.startswith("k8s-")]) for i in self.store.values()]

    async def create(self, url: str, credentials: Any, body: dict[str, Any], **_: Any) -> Instance:
        self.calls.append(("POST", self.next_id))
        self.store[self.next_id] = Instance(self.next_id, f"token-{self.next_id}", tags=tuple(body["tags"]))
        self.next_id += 1
        return self.store[self.next_id - 1]

    async def update(
        self, url: str, credentials: Any, instance_id: int, body: dict[str, Any], **_: Any
    ) -> Instance:
        self.calls.append(("PUT", instance_id))
        self.store[instance_id] = replace(
            self.store[instance_id], tags=tuple(body["tags"]), name=body["name"]
        )
        return self.store[instance_id]

    async def patch(
        self, url: str, credentials: Any, instance_id: int, body: dict[str, Any], **_: Any
    ) -> Instance:
        self.calls.append(("PATCH", instance_id))
        self.store[instance_id] = replace(self.store[instance_id], tags=tuple(body["tags"]))
        return self.store[instance_id]

    async def delete(self, url: str, credentials: Any, instance_id: int, **_: Any) -> None:
        self.calls.append(("DELETE", instance_id))
        self.store.pop(instance_id, None)

    def writes(self, instance_id: int) -> list[str]:
        return [m for m, i in self.calls if i == instance_id and m in ("PUT", "PATCH", "DELETE")]


class Live:
    """`engine.liveobjects.LiveObjects` over plain data."""

    def __init__(
        self, uids: dict[str, tuple[str, str]], users: dict[int, list[tuple[str, str]]] | None = None
    ):
        self.uids, self._users = uids, users or {}

    def by_uid(self, uid: str) -> tuple[str, str] | None:
        return self.uids.get(uid)

    def has_uid(self, uid: str) -> bool:
        return uid in self.uids

    def has_object(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.uids.values()

    def users(self, instance_id: int, api_url: str, besides: str) -> list[tuple[str, str]]:
        return self._users.get(instance_id, [])


class Secrets:
    """The token Secrets written, as (name, token)."""

    def __init__(self) -> None:
        self.written: list[tuple[str, str]] = []

    async def read(self, *_: Any) -> None:
        return None

    async def write_token(self, namespace: str, name: str, owner: Any, data: dict[str, str], *_: Any) -> bool:
        self.written.append((name, data["token"]))
        return True


class Status:
    async def patch(self, *_: Any, **__: Any) -> bool:
        return True


def runtime(platform: Platform, live: Live, cluster: str | None = None) -> Runtime:
    return build_runtime(
        Settings(cluster_name=cluster),
        events=Events(),
        instances=platform,
        secrets=Secrets(),
        status=Status(),
        live=live,
    )


def posted(rt: Runtime) -> Events:
    """What the pass had the kopf shell post (the test's sink)."""
    assert isinstance(rt.events, Events)
    return rt.events


def remote_pass(
    rt: Runtime, spec: dict[str, Any], status: dict[str, Any], *, uid: str = ME, take_over: str | None = None
) -> RemotePass:
    parsed = parse_spec(spec)
    target = Target("team-a", "crm", uid, 1, spec, take_over=take_over)
    desired = desired_instance(
        parsed, namespace="team-a", name="crm", uid=uid, configuration={}, cluster=rt.settings.cluster_name
    )
    return RemotePass(
        rt=rt,
        target=target,
        spec=parsed,
        state=ObjectState(status=parse_status(status)),
        cache={},
        api_url=URL,
        credentials=Credentials("u", "o"),
        desired=desired,
        keyed=Keyed(b"k" * 32, uid),
        digest="new-digest",
        attempt="a",
        facts=Facts(),
    )


def victim() -> Instance:
    return Instance(
        1001, "victim-token", name="team-b-crm", tags=(identity_tag(VICTIM), "k8s-object:team-b/crm")
    )


async def test_a_forged_status_after_a_restart_puts_nothing_and_exports_nothing() -> None:
    # The critical finding: status.instanceID set to another team's instance, then a restart.
    platform = Platform(victim())
    rt = runtime(platform, Live({ME: ("team-a", "crm"), VICTIM: ("team-b", "crm")}))
    forged = {"instanceID": 1001, "appliedDigest": "v2:hmac-sha256:junk", "apiURL": URL}
    remote = remote_pass(rt, SPEC, forged)
    outcome = await remote.run(remote_due=False)
    assert outcome.reason == "AdoptionConflict"
    assert "1001" in outcome.message
    assert platform.writes(1001) == []
    assert platform.store[1001] == victim()
    assert remote.state.instance is None  # nothing to export from
    assert rt.secrets.written == []  # type: ignore[attr-defined]


async def test_a_forged_status_without_an_applied_digest_is_not_adopted_either() -> None:
    platform = Platform(Instance(1001, "ui-token", tags=()))  # untagged: a UI-made instance
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))
    outcome = await remote_pass(rt, SPEC, {"instanceID": 1001, "apiURL": URL}).run(remote_due=True)
    assert outcome.reason == "AdoptionConflict"
    assert platform.writes(1001) == []


async def test_an_id_from_status_that_carries_the_identity_is_updated_after_one_get() -> None:
    own = Instance(7, "tok", tags=(identity_tag(ME),))
    platform = Platform(own)
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))
    remote = remote_pass(rt, SPEC, {"instanceID": 7, "appliedDigest": "v2:hmac-sha256:old", "apiURL": URL})
    await remote.run(remote_due=False)
    assert [m for m, _ in platform.calls] == ["GET", "PUT"]
    assert remote.state.verified == 7
    # What `finish` records of the pass: the request is applied.
    remote.state.status = remote.state.status.model_copy(
        update={"applied_digest": remote.facts.applied_digest}
    )
    await remote.run(remote_due=True)  # verified now: the periodic check is one GET again
    assert [m for m, _ in platform.calls] == ["GET", "PUT", "GET"]


async def test_a_take_over_is_refused_while_the_old_object_lives_and_accepted_after() -> None:
    old = Instance(1001, "tok", tags=(identity_tag(OLD), "k8s-object:old/crm", "crm"))
    platform = Platform(old)
    spec = {**SPEC, "instanceID": 1001}
    live = Live({ME: ("team-a", "crm"), OLD: ("old", "crm")})
    refused = await remote_pass(runtime(platform, live), spec, {}, take_over=OLD).run(remote_due=False)
    assert (refused.reason, "claim of old/crm, which exists" in refused.message) == ("AdoptionConflict", True)
    del live.uids[OLD]
    without = await remote_pass(runtime(platform, live), spec, {}).run(remote_due=False)
    assert without.reason == "AdoptionConflict"  # the tag is still there: no annotation, no take-over
    wrong = await remote_pass(runtime(platform, live), spec, {}, take_over=VICTIM).run(remote_due=False)
    assert wrong.reason == "AdoptionConflict"  # names another UID than the one on the instance
    assert platform.writes(1001) == []
    taking = remote_pass(runtime(platform, live), spec, {}, take_over=OLD)
    assert (await taking.run(remote_due=False)).reason == "Available"
    assert platform.writes(1001) == ["PUT"]
    assert identity_tag(ME) in platform.store[1001].tags
    assert identity_tag(OLD) not in platform.store[1001].tags
    assert [e[1] for e in taking.state.events] == ["TakenOver"]
    assert OLD in taking.state.events[0][2]
    assert ME in taking.state.events[0][2]


async def test_an_instance_another_object_observes_is_not_adopted() -> None:
    platform = Platform(Instance(1001, "ui-token", tags=()))  # observing leaves no mark
    live = Live({ME: ("team-a", "crm")}, users={1001: [("team-b", "watcher")]})
    outcome = await remote_pass(runtime(platform, live), {**SPEC, "instanceID": 1001}, {}).run(
        remote_due=False
    )
    assert outcome.reason == "AdoptionConflict"
    assert "team-b/watcher" in outcome.message
    assert platform.writes(1001) == []


async def test_a_rebuilt_object_reclaims_its_instance_by_its_claim_with_one_put() -> None:
    before = Instance(
        1001,
        "the-token",
        tags=(identity_tag(OLD), "k8s-object:team-a/crm", claim_tag("prod", "team-a", "crm")),
    )
    platform = Platform(before)
    rt = runtime(platform, Live({ME: ("team-a", "crm")}), cluster="prod")
    remote = remote_pass(rt, SPEC, {})
    assert (await remote.run(remote_due=False)).reason == "Available"
    assert [m for m, _ in platform.calls] == ["listing", "PUT"]
    assert rt.secrets.written == [("crm-token", "the-token")]  # type: ignore[attr-defined]
    assert set(platform.store[1001].tags) == set(Identity(ME, "team-a", "crm", "prod").tags())
    assert [e[1] for e in remote.state.events] == ["Reclaimed"]


async def test_without_a_cluster_name_a_rebuild_creates_and_the_old_instance_is_a_stray() -> None:
    before = Instance(1001, "the-token", tags=(identity_tag(OLD),))
    platform = Platform(before)
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))
    await remote_pass(rt, SPEC, {}).run(remote_due=False)
    assert [m for m, _ in platform.calls] == ["listing", "POST"]
    assert posted(rt).reasons() == ["StrayInstance"]
    assert "1001" in posted(rt)[0][1][2]


# --- deletion -----------------------------------------------------------------------------------


DELETING = Meta("team-a", "crm", ME, generation=1, deleting=True)


def events(verdict: deletion.Verdict) -> list[tuple[str, str]]:
    """(reason, message) of the Events a deletion's verdict asks the kopf shell to post."""
    assert not isinstance(verdict, deletion.Wait)
    return [(reason, message) for _, reason, message in verdict.events]


async def account(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    async def found(*_: Any) -> tuple[Credentials, None]:
        return Credentials("u", "o"), None

    monkeypatch.setattr(deletecalls, "account_secrets_of", found)


async def test_a_deletion_deletes_what_carries_the_identity_and_not_a_forged_status_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = Instance(1002, "tok", tags=(identity_tag(ME),))
    platform = Platform(victim(), own)
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))
    await account(rt, monkeypatch)
    forged = {
        "instanceID": 1001,
        "apiURL": "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2",
    }
    verdict = await deletion.delete_remote(rt, DELETING, parse_spec(SPEC), parse_status(forged), {})
    assert platform.writes(1001) == []
    assert platform.writes(1002) == ["DELETE"]
    assert [r for r, _ in events(verdict)] == ["NotOwned", "Deleted"]
    assert "1001" in events(verdict)[0][1]


async def test_orphan_removes_the_identity_with_one_patch_and_keeps_the_users_tags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = Instance(1002, "tok", tags=("crm", identity_tag(ME), "k8s-object:team-a/crm"))
    platform = Platform(own)
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))
    await account(rt, monkeypatch)
    verdict = await deletion.release_remote(
        rt, DELETING, parse_spec({**SPEC, "deletionPolicy": "Orphan"}), {}
    )
    assert platform.writes(1002) == ["PATCH"]
    assert platform.store[1002].tags == ("crm",)
    assert [r for r, _ in events(verdict)] == ["Released"]


async def test_orphan_without_an_answer_still_releases_and_names_the_tag_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform()

    async def down(*_: Any, **__: Any) -> list[Instance]:
        raise errors.ServerError(503, "Service Unavailable")

    platform.find_by_tag = down  # type: ignore[method-assign]
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))
    await account(rt, monkeypatch)
    verdict = await deletion.release_remote(rt, DELETING, parse_spec(SPEC), {})
    assert [r for r, _ in events(verdict)] == ["Orphaned"]
    assert identity_tag(ME) in events(verdict)[0][1]


# --- planted marks (a hostile review of this change) ---------------------------------------------


async def test_a_planted_claim_or_uid_never_makes_another_object_write_the_instance() -> None:
    # Her instance also carries team-b/crm's claim (or its UID): markup the platform stripped, say.
    hers = Identity("hers", "team-a", "x", "prod")
    for planted in (claim_tag("prod", "team-b", "crm"), identity_tag(ME)):
        platform = Platform(Instance(500, "her-token", tags=(planted, *hers.tags())))
        platform.next_id = 600
        rt = runtime(platform, Live({ME: ("team-b", "crm"), "hers": ("team-a", "x")}), cluster="prod")
        remote = remote_pass(rt, SPEC, {})
        remote.target = Target("team-b", "crm", ME, 1, SPEC)
        await remote.run(remote_due=False)
        assert platform.writes(500) == []
        assert platform.calls[-1] == ("POST", 600)  # an instance of its own instead


async def test_a_take_over_is_refused_while_a_live_object_of_this_cluster_claims_the_instance() -> None:
    # After a rebuild team-b/crm exists under a new UID but has not reclaimed yet.
    claimed = Instance(1001, "victim-token", tags=(identity_tag(OLD), claim_tag("prod", "team-b", "crm")))
    platform = Platform(claimed)
    live = Live({ME: ("team-a", "crm"), "new-uid": ("team-b", "crm")})
    outcome = await remote_pass(
        runtime(platform, live, "prod"), {**SPEC, "instanceID": 1001}, {}, take_over=OLD
    ).run(remote_due=False)
    assert outcome.reason == "AdoptionConflict"
    assert "team-b/crm" in outcome.message
    assert platform.writes(1001) == []


def test_one_endpoint_however_its_host_is_spelled() -> None:
    from connector_operator.engine.creations import endpoint_key

    credentials = Credentials("u", "o")
    spellings = [URL, URL.replace("api.open", "API.Open"), URL.replace(".com/", ".com./"), URL + "/"]
    assert len({endpoint_key(url, credentials) for url in spellings}) == 1
    assert endpoint_key(URL.replace("https", "http"), credentials) != endpoint_key(URL, credentials)


def test_stray_events_are_bounded_per_listing_and_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector_operator.reconciler import strays as module

    posted = Events()
    monkeypatch.setattr(module, "MAX_EVENTED", 50)
    reports = module.StrayReports(Accounts(), lambda key: None, posted)
    ref = Target("team-a", "crm", ME, 1, {}).ref
    reports.report(list(range(30)), module.Scope("e1", "h", None), ref)
    assert len(posted) == module.EVENTS_PER_LISTING + 1  # 20 named, one summary
    reports.report(list(range(30)), module.Scope("e1", "h", None), ref)
    assert len(posted) == module.EVENTS_PER_LISTING + 1  # once per stray
    reports.report(list(range(100, 200)), module.Scope("e2", "h", None), ref)
    assert sum(map(len, reports._evented.values())) == 50  # no more remembered than the bound


async def test_orphan_sends_the_users_tags_back_as_they_were_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = Instance(
        1002, "tok", tags=("R&amp;D", identity_tag(ME), "k8s-object:team-a/crm")
    )  # escaped by the platform
    platform = Platform(own)
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))
    await account(rt, monkeypatch)
    await deletion.release_remote(rt, DELETING, parse_spec(SPEC), {})
    assert platform.store[1002].tags == ("R&D",)


async def test_an_instance_reclaimed_after_the_listing_is_no_stray_any_more() -> None:
    # A GitOps rebuild applies objects one after another: the first create lists while team-a/y is
    # not there yet, and its instance is reported; once y reclaims it, the report says so.
    from connector_operator.api.account import AccountKind
    from connector_operator.domain.accounts import AccountKey

    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", "shared")
    later = Instance(1001, "y-token", tags=(identity_tag(OLD), claim_tag("prod", "team-a", "y")))
    platform = Platform(later)
    platform.next_id = 600
    live = Live({ME: ("team-a", "crm")})
    rt = runtime(platform, live, cluster="prod")
    first = remote_pass(rt, SPEC, {})
    first.account = key
    await first.run(remote_due=False)
    assert rt.accounts.state(key).strays == (1001,)
    live.uids["new-y"] = ("team-a", "y")
    second = remote_pass(rt, SPEC, {}, uid="new-y")
    second.target = Target("team-a", "y", "new-y", 1, SPEC)
    second.desired = desired_instance(
        parse_spec(SPEC), namespace="team-a", name="y", uid="new-y", configuration={}, cluster="prod"
    )
    second.account = key
    await second.run(remote_due=False)
    assert [e[1] for e in second.state.events] == ["Reclaimed"]
    assert rt.accounts.state(key).strays == ()
