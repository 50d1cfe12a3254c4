"""What the operator keeps of Secrets is bounded, whatever tenants put into them (issue 9 review).

The Secret watch's index keeps metadata, a fingerprint and, for token Secrets, digests of the
token; never a value, nor a tenant's labels and annotations, and kopf's copy of each event loses
its values once indexed. Values live in `SecretCopies`, bounded in bytes, and a read is served
from there only while the watch shows the Secret at the copy's resourceVersion; otherwise, and
for a Secret too large to keep, it is read from the API (coalesced, a bounded number at once).
The memory of the whole process is measured on the API server: tests/integration/test_secret_memory.py.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Mapping
from typing import Any, cast

import kopf

from connector_operator.api.spec import parse_spec
from connector_operator.domain.desired import Keyed, desired_instance, legacy_token_digest, token_digest
from connector_operator.domain.transition import Facts, parse_status
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.engine.secretholds import SecretHolds
from connector_operator.engine.secretreads import FETCHES, SecretCopies, SecretReads
from connector_operator.engine.wakeups import Wakeups
from connector_operator.handlers import secrets as watch
from connector_operator.kube.secrets import SecretMeta, Secrets, SecretView, encode
from connector_operator.openconnectors.client import Credentials
from connector_operator.openconnectors.instance import Instance
from connector_operator.reconciler.remote import RemotePass
from tests.fixtures.runtime import build_runtime

NS = "tenant"
UID = "0b5e7a36-4f7c-4d35-9a55-1f0c7f3c2a10"
KEY = bytes(range(32))
API_URL = "https://api.example.test/elements/api-v2"
WATCH = "openconnectors.io/watch"
MANAGED = {"app.kubernetes.io/managed-by": "open-connectors-operator"}
BIG = "x" * 1_000_000


def raw_secret(
    name: str,
    data: Mapping[str, str],
    *,
    labels: Mapping[str, str] | None = None,
    held: bool = False,
    version: str = "1",
    owner: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "resourceVersion": version,
        "labels": dict(labels or {}),
        "annotations": {"note": "n" * 200_000},
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {"f:blob": {}}}}],
    }
    if held:
        meta["finalizers"] = ["openconnectors.io/in-use"]
    if owner is not None:
        meta["ownerReferences"] = [{"kind": "ConnectorInstance", "uid": owner, "controller": True}]
    return {"metadata": meta, "data": encode(data)}


def held_input(name: str, data: Mapping[str, str], version: str = "1") -> dict[str, Any]:
    return raw_secret(name, data, labels={WATCH: "input"}, held=True, version=version)


# --- the index keeps no values ---------------------------------------------------------------


def test_the_index_keeps_metadata_and_a_fingerprint_only() -> None:
    labels = {WATCH: "token", **{f"tenant.example/l{i}": "v" * 60 for i in range(2000)}}
    raw = raw_secret("junk", {"blob": BIG}, labels=labels)
    meta = watch.secret_meta(raw, KEY)
    assert type(meta) is SecretMeta
    assert len(pickle.dumps(meta)) < 1024  # of a Secret of over a megabyte
    assert meta.labels == {WATCH: "token"}
    assert meta.token is None  # not a token Secret of ours
    assert meta.resource_version == "1"
    assert meta.fingerprint == watch.secret_meta(raw_secret("junk", {"blob": BIG}), None).fingerprint
    assert meta.fingerprint != watch.secret_meta(raw_secret("junk", {"blob": BIG + "y"}), None).fingerprint
    # Length-prefixed: moving a character from the key to the value is another content.
    assert watch.secret_meta(raw_secret("s", {"ab": "c"}), None).fingerprint != (
        watch.secret_meta(raw_secret("s", {"a": "bc"}), None).fingerprint
    )


def test_a_token_secret_is_kept_as_digests_of_its_token() -> None:
    data = {"token": "tok-1", "instanceID": "42", "apiURL": API_URL}
    meta = watch.secret_meta(raw_secret("crm-token", data, labels=MANAGED, owner=UID), KEY)
    assert meta.token is not None
    assert meta.token.digest == token_digest("tok-1", Keyed(KEY, UID))
    assert meta.token.legacy_digest == legacy_token_digest("tok-1", UID)
    assert (meta.token.instance_id, meta.token.api_url) == ("42", API_URL)
    assert "tok-1" not in repr(meta)
    assert "tok-1" not in str(pickle.loads(pickle.dumps(meta)).__dict__)

    without_key = watch.secret_meta(raw_secret("crm-token", data, labels=MANAGED, owner=UID), None)
    assert without_key.token is not None
    assert without_key.token.digest is None  # compared with nothing: the platform is asked

    # Someone's Secret labelled as ours, with huge fields: bounded, and never matches.
    huge = {"token": BIG, "instanceID": BIG, "apiURL": BIG}
    forged = watch.secret_meta(raw_secret("fake", huge, labels=MANAGED, owner="u" * 10_000), KEY)
    assert len(pickle.dumps(forged)) < 1024
    assert forged.token is not None
    assert (forged.token.instance_id, forged.token.api_url) == (None, None)
    assert forged.owner_uid is not None
    assert forged.owner_uid.startswith("sha256:")


async def test_the_index_handler_drops_the_values_kopf_holds() -> None:
    raw = raw_secret("junk", {"blob": BIG}, labels={WATCH: "token", "tenant": "x"})
    body = kopf.Body(raw)
    indexed = await watch.secret_cache(namespace=NS, name="junk", body=body, memo=kopf.Memo())
    assert raw["data"] == {}
    assert "annotations" not in raw["metadata"]
    assert "managedFields" not in raw["metadata"]
    assert raw["metadata"]["labels"] == {WATCH: "token"}
    assert raw["metadata"]["resourceVersion"] == "1"  # what kopf needs stays
    assert (
        indexed[(NS, "junk")].fingerprint
        == watch.secret_meta(raw_secret("junk", {"blob": BIG}), None).fingerprint
    )


# --- the copies are bounded ------------------------------------------------------------------


def view(name: str, size: int, version: str = "1") -> SecretView:
    return SecretView.from_raw(held_input(name, {"v": "x" * size}, version))


def test_copies_stay_within_their_budget_least_recently_used_out_first() -> None:
    copies = SecretCopies(budget=10_000, max_kept=4_000)
    for name in "abc":
        copies.keep(view(name, 3_000), fetched=True)
    assert [k[1] for k in copies.entries] == ["b", "c"]
    assert copies.used <= 10_000
    assert copies.current((NS, "b"), "1") is not None  # b is now the most recently used
    copies.keep(view("d", 3_000), fetched=True)
    assert [k[1] for k in copies.entries] == ["b", "d"]
    copies.keep(view("big", 5_000), fetched=True)  # over max_kept: not kept, nothing evicted
    assert [k[1] for k in copies.entries] == ["b", "d"]
    copies.forget((NS, "b"))
    copies.forget((NS, "d"))
    assert (copies.used, len(copies.entries)) == (0, 0)


def test_a_copy_serves_only_at_the_resource_version_the_watch_shows() -> None:
    copies = SecretCopies()
    copies.keep(view("a", 10, version="7"), fetched=False)
    assert copies.current((NS, "a"), "7") is not None
    assert copies.current((NS, "a"), "8") is None
    assert copies.recent((NS, "a"), 10.0) is None  # the watch's copy did not hold the Secret


def test_the_watch_s_copies_push_out_nothing() -> None:
    copies = SecretCopies(budget=7_000, max_kept=4_000)
    copies.keep(view("read", 3_000), fetched=True)
    copies.offer(view("listed", 3_000), new=True)
    copies.offer(view("more", 3_000), new=True)  # no room left: not kept
    assert [k[1] for k in copies.entries] == ["read", "listed"]
    copies.offer(view("read", 3_500, version="2"), new=False)  # a newer version replaces a kept one
    assert copies.current((NS, "read"), "2") is not None


# --- reading ---------------------------------------------------------------------------------


class FakeSecrets:
    """The API server's Secrets, as `kube.secrets.Secrets` reads and holds them; counts calls."""

    def __init__(self, *raws: dict[str, Any]) -> None:
        self.raws = {r["metadata"]["name"]: r for r in raws}
        self.gets = 0
        self.patches = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate: asyncio.Event | None = None

    async def read(self, namespace: str, name: str) -> SecretView | None:
        self.gets += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await (self.gate.wait() if self.gate else asyncio.sleep(0))
        finally:
            self.in_flight -= 1
        raw = self.raws.get(name)
        return SecretView.from_raw(raw) if raw is not None else None

    async def label_for_watch(self, namespace: str, name: str) -> SecretView | None:
        self.patches += 1
        meta = self.raws[name]["metadata"]
        meta["labels"] = {**meta.get("labels", {}), WATCH: "input"}
        meta["finalizers"] = ["openconnectors.io/in-use"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        return SecretView.from_raw(self.raws[name])


def reader(fake: FakeSecrets) -> tuple[SecretReads, SecretHolds]:
    reads = SecretReads()
    return reads, SecretHolds(cast(Secrets, fake), reads.copies)


async def read(reads: SecretReads, holds: SecretHolds, cache: Mapping[Any, SecretMeta], name: str) -> Any:
    return await reads.read(holds.secrets, Wakeups(), holds, cache, NS, name)


async def test_a_held_secret_the_watch_delivered_is_read_without_a_request() -> None:
    raw = held_input("account", {"userSecret": "u", "organizationSecret": "o"})
    fake = FakeSecrets(raw)
    reads, holds = reader(fake)
    meta = watch.secret_meta(raw, KEY)
    reads.watched(meta, raw["data"])  # the initial listing after a restart
    cache = {(NS, "account"): meta}
    for _ in range(3):
        got = await read(reads, holds, cache, "account")
        assert got.data == {"userSecret": "u", "organizationSecret": "o"}
    assert (fake.gets, fake.patches) == (0, 0)

    # The Secret changed: the watch shows a new resourceVersion; its event brings the values too.
    changed = held_input("account", {"userSecret": "u2", "organizationSecret": "o"}, version="2")
    meta = watch.secret_meta(changed, KEY)
    reads.watched(meta, changed["data"])
    assert (await read(reads, holds, {(NS, "account"): meta}, "account")).data["userSecret"] == "u2"
    assert fake.gets == 0


async def test_a_copy_the_watch_does_not_confirm_is_read_again_once_for_everyone() -> None:
    raw = held_input("account", {"userSecret": "u", "organizationSecret": "o"}, version="5")
    fake = FakeSecrets(raw)
    reads, holds = reader(fake)
    stale = watch.secret_meta(held_input("account", {"userSecret": "old"}, version="4"), KEY)
    reads.watched(stale, held_input("account", {"userSecret": "old"}, version="4")["data"])
    cache = {(NS, "account"): watch.secret_meta(raw, KEY)}  # the watch is at 5, the copy at 4
    fake.gate = asyncio.Event()
    readers = [asyncio.ensure_future(read(reads, holds, cache, "account")) for _ in range(50)]
    await asyncio.sleep(0)
    fake.gate.set()
    assert {r.data["userSecret"] for r in await asyncio.gather(*readers)} == {"u"}
    assert fake.gets == 1
    await read(reads, holds, cache, "account")
    assert fake.gets == 1  # kept at 5 now


async def test_a_secret_too_large_to_keep_is_read_each_time_with_its_real_values() -> None:
    raw = held_input("big", {"apiKey": "k", "blob": BIG})
    fake = FakeSecrets(raw)
    reads, holds = reader(fake)
    meta = watch.secret_meta(raw, KEY)
    reads.watched(meta, raw["data"])
    assert reads.copies.entries == {}  # not even decoded
    cache = {(NS, "big"): meta}
    for expected_gets in (1, 2):
        got = await read(reads, holds, cache, "big")
        assert got.data["apiKey"] == "k"
        assert len(got.data["blob"]) == len(BIG)
        assert fake.gets == expected_gets
    assert reads.copies.used == 0


async def test_a_tenant_s_labelled_secret_is_not_kept() -> None:
    reads, _ = reader(FakeSecrets())
    for role in ("token", "input", "anything"):
        raw = raw_secret(f"junk-{role}", {"blob": "x" * 1000}, labels={WATCH: role})
        reads.watched(watch.secret_meta(raw, KEY), raw["data"])
    assert reads.copies.entries == {}


async def test_reads_in_flight_are_bounded() -> None:
    names = [f"s{i}" for i in range(3 * FETCHES)]
    fake = FakeSecrets(*(raw_secret(n, {"k": "v"}) for n in names))
    reads, holds = reader(fake)
    fake.gate = asyncio.Event()
    readers = [asyncio.ensure_future(read(reads, holds, {}, n)) for n in names]
    for _ in range(10):
        await asyncio.sleep(0)
    assert fake.most_in_flight == FETCHES
    fake.gate.set()
    assert all(r is not None for r in await asyncio.gather(*readers))
    assert (fake.gets, fake.patches) == (len(names), len(names))  # each read, and held


# --- the token Secret: compared through the digests the watch keeps ----------------------------


class TokenSecrets:
    def __init__(self) -> None:
        self.reads = 0
        self.writes: list[tuple[Mapping[str, str], SecretMeta | None]] = []

    async def read(self, namespace: str, name: str) -> SecretView | None:
        self.reads += 1
        return None

    async def write_token(
        self,
        namespace: str,
        name: str,
        owner: Any,
        data: Mapping[str, str],
        current: SecretMeta | None,
        shape: Any = None,
    ) -> bool:
        self.writes.append((data, current))
        return True


def token_pass(token_secret: SecretMeta | None, secrets: TokenSecrets) -> RemotePass:
    spec = parse_spec({"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}})
    keyed = Keyed(KEY, UID)
    rt = build_runtime(secrets=secrets)
    return RemotePass(
        rt=rt,
        target=Target(NS, "crm", UID, 1, {}),
        spec=spec,
        state=ObjectState(status=parse_status({})),
        cache={(NS, "crm-token"): token_secret} if token_secret is not None else {},
        api_url=API_URL,
        credentials=Credentials("user", "organization"),
        desired=desired_instance(spec, namespace=NS, name="crm", uid=UID, configuration={}),
        keyed=keyed,
        digest="d",
        attempt="a",
        facts=Facts(),
    )


def token_secret(token: str, key: bytes | None = KEY) -> SecretMeta:
    data = {"token": token, "instanceID": "42", "apiURL": API_URL}
    return watch.secret_meta(raw_secret("crm-token", data, labels=MANAGED, owner=UID), key)


async def test_an_unchanged_token_secret_costs_no_request() -> None:
    secrets = TokenSecrets()
    await token_pass(token_secret("tok-1"), secrets)._export(Instance(id=42, token="tok-1"))
    assert (secrets.reads, secrets.writes) == (0, [])


async def test_a_new_token_is_written_without_reading_the_secret_first() -> None:
    secrets = TokenSecrets()
    seen = token_secret("tok-1")
    await token_pass(seen, secrets)._export(Instance(id=42, token="tok-2"))
    assert secrets.reads == 0
    assert secrets.writes == [({"token": "tok-2", "instanceID": "42", "apiURL": API_URL}, seen)]


async def test_without_digests_the_fingerprint_of_the_data_still_tells() -> None:
    # Since issue 11 the content is compared through the watch's fingerprint of the whole data,
    # which needs no key: a watch without the digest key costs no read either.
    secrets = TokenSecrets()
    await token_pass(token_secret("tok-1", key=None), secrets)._export(Instance(id=42, token="tok-1"))
    assert (secrets.reads, secrets.writes) == (0, [])
    await token_pass(token_secret("tok-1", key=None), secrets)._export(Instance(id=42, token="tok-2"))
    assert secrets.reads == 0
    assert len(secrets.writes) == 1


def test_after_a_restart_the_token_secret_is_compared_with_status_through_its_digest() -> None:
    digest = token_digest("tok-1", Keyed(KEY, UID))
    status = parse_status({"instanceID": 42, "tokenDigest": digest})
    current = token_pass(token_secret("tok-1"), TokenSecrets())
    current.state = ObjectState(status=status)
    assert current._token_known()
    stale = token_pass(token_secret("tok-0"), TokenSecrets())
    stale.state = ObjectState(status=status)
    assert not stale._token_known()
