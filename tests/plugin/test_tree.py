"""The `status` tree, built from objects as the API server returns them (unit: no I/O). Which
account an instance hangs under, the token Secret under it and which Pods use that Secret (every
way a Pod can), what is unknown when a list was not allowed, and what `status` exits 1 for."""

from __future__ import annotations

from typing import Any

from kubectl_openconnectors import tree

CREATED = "2026-01-01T00:00:00Z"


def instance(name: str, namespace: str = "sales", ready: str = "True", **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "kind": "ConnectorInstance",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {"connectorKey": "closeio", **spec},
        "status": {
            "conditions": [
                {"type": "Ready", "status": ready, "reason": "Available" if ready == "True" else "Creating"},
                {"type": "Synced", "status": ready, "reason": "ReconcileSuccess"},
            ],
            **status,
        },
    }


def account(kind: str, name: str, namespace: str = "", ready: str = "True") -> dict[str, Any]:
    meta = {"name": name, "creationTimestamp": CREATED} | ({"namespace": namespace} if namespace else {})
    reason = "Healthy" if ready == "True" else "CircuitOpen"
    return {
        "kind": kind,
        "metadata": meta,
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": reason}]},
    }


def secret(name: str, namespace: str = "sales") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED}}


def pod(name: str, spec: dict[str, Any], namespace: str = "sales", phase: str = "Running") -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if phase == "Running" else "False"}]
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": spec,
        "status": {"phase": phase, "conditions": conditions},
    }


def build(
    instances: list[dict[str, Any]], accounts: list[dict[str, Any]] | None = None, **more: Any
) -> list[tree.Node]:
    inputs = tree.Inputs(
        instances,
        accounts or [],
        more.get("secrets", []),
        more.get("pods", []),
        all_accounts=more.get("all_accounts", False),
    )
    return tree.build(inputs)


def shape(nodes: list[tree.Node]) -> list[Any]:
    return [
        (n.kind, n.namespace, n.name, shape(n.children)) if n.children else (n.kind, n.namespace, n.name)
        for n in nodes
    ]


def test_instances_hang_under_their_account_and_the_grouping_lines() -> None:
    shared = account("ClusterConnectorAccount", "shared")
    team = account("ConnectorAccount", "team", "sales")
    nodes = build(
        [
            instance("b-own", credentialsSecretRef={"name": "oc-account"}),
            instance("a-shared", accountRef={"kind": "ClusterConnectorAccount", "name": "shared"}),
            instance("team", accountRef={"kind": "ConnectorAccount", "name": "team"}),
            instance("default-resolved", status={"account": "ClusterConnectorAccount/shared"}),
            instance("default-waiting", ready="False"),
        ],
        [team, shared],
    )
    tops = [(n.kind, n.namespace, n.name, [c.name for c in n.children]) for n in nodes]
    assert tops == [
        ("ClusterConnectorAccount", "", "shared", ["a-shared", "default-resolved"]),
        ("ConnectorAccount", "sales", "team", ["team"]),
        ("Credentials", "", "", ["b-own"]),
        ("DefaultAccount", "", "", ["default-waiting"]),
    ]
    own = nodes[2].children[0]
    assert own.detail == "Secret/oc-account"
    assert (nodes[0].ready, nodes[0].reason) == ("True", "Healthy")


def test_status_account_wins_over_the_spec_and_an_unlisted_account_is_a_placeholder() -> None:
    nodes = build([instance("x", accountRef={"kind": "ClusterConnectorAccount", "name": "gone"})])
    [top] = nodes
    assert (top.kind, top.name, top.reason, top.ready) == ("ClusterConnectorAccount", "gone", "NotFound", "")
    # A placeholder has no Ready to judge: only the instance can make `status` exit 1.
    assert tree.not_ready(nodes) == []
    moved = instance("y", credentialsSecretRef={"name": "s"}, status={"account": "Secret/s"})
    assert [n.kind for n in build([moved])] == ["Credentials"]


def test_unused_cluster_accounts_only_with_all_namespaces_but_a_namespaces_own_always() -> None:
    accounts = [account("ClusterConnectorAccount", "idle"), account("ConnectorAccount", "mine", "sales")]
    assert [n.name for n in build([], accounts)] == ["mine"]
    assert [n.name for n in build([], accounts, all_accounts=True)] == ["idle", "mine"]


def test_the_token_secret_and_every_way_a_pod_uses_it() -> None:
    uses = {
        "by-volume": {
            "containers": [{"name": "a"}],
            "volumes": [{"name": "v", "secret": {"secretName": "crm-token"}}],
        },
        "by-projection": {
            "containers": [{"name": "a"}],
            "volumes": [
                {
                    "name": "v",
                    "projected": {
                        "sources": [{"configMap": {"name": "c"}}, {"secret": {"name": "crm-token"}}]
                    },
                }
            ],
        },
        "by-env-from": {
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "crm-token"}}]}],
            "containers": [],
        },
        "by-env": {
            "containers": [
                {
                    "name": "a",
                    "env": [
                        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "crm-token", "key": "token"}}},
                        {"name": "X", "value": "1"},
                    ],
                }
            ]
        },
        "unrelated": {"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "other"}}]}]},
    }
    pods = [pod(name, spec) for name, spec in uses.items()]
    pods.append(pod("other-namespace", uses["by-volume"], namespace="crm"))  # same Secret name, elsewhere
    nodes = build(
        [instance("crm", credentialsSecretRef={"name": "a"})], secrets=[secret("crm-token")], pods=pods
    )
    [token] = nodes[0].children[0].children
    assert (token.kind, token.name, token.created, token.reason) == ("Secret", "crm-token", CREATED, "")
    assert {p.name: p.detail for p in token.children} == {
        "by-env": "env",
        "by-env-from": "envFrom",
        "by-projection": "projected",
        "by-volume": "volume",
    }
    assert [p.name for p in token.children] == sorted(p.name for p in token.children)
    assert {(p.ready, p.reason) for p in token.children} == {("True", "Running")}


def test_the_token_secret_name_comes_from_status_then_spec_then_the_default() -> None:
    named = instance("a", tokenSecret={"name": "from-spec"})
    reported = instance("b", tokenSecret={"name": "from-spec"}, status={"tokenSecretName": "from-status"})
    default = instance("c")
    nodes = build([named, reported, default], secrets=[secret("from-spec")])
    tokens = {i.name: i.children[0] for i in nodes[0].children}
    assert {name: (t.name, t.reason) for name, t in tokens.items()} == {
        "a": ("from-spec", ""),
        "b": ("from-status", "NotFound"),
        "c": ("c-token", "NotFound"),
    }


def test_what_was_not_listed_is_unknown_not_missing() -> None:
    inputs = tree.Inputs([instance("crm")], [], None, None, all_accounts=False)
    [top] = tree.build(inputs)
    token = top.children[0].children[0]
    assert (token.reason, token.created, token.children) == ("", "", [])


def test_not_ready_and_the_details_of_an_instance() -> None:
    deleting = instance("gone", ready="False", status={"instanceID": 7})
    deleting["metadata"] |= {
        "deletionTimestamp": CREATED,
        "annotations": {"openconnectors.io/paused": "true"},
    }
    nodes = build(
        [deleting, instance("fine")],
        [account("ClusterConnectorAccount", "down", ready="False")],
        all_accounts=True,
    )
    assert [(n.kind, n.name) for n in tree.not_ready(nodes)] == [
        ("ClusterConnectorAccount", "down"),
        ("ConnectorInstance", "gone"),
    ]
    gone = next(n for top in nodes for n in top.walk() if n.name == "gone")
    assert gone.detail == "deleting, paused, instance 7"


def test_a_stall_or_a_failed_sync_explains_better_than_ready() -> None:
    stalled = instance("s")
    stalled["status"]["conditions"].append(
        {"type": "Stalled", "status": "True", "reason": "AdoptionConflict"}
    )
    paused = instance("p")
    paused["status"]["conditions"][1] = {"type": "Synced", "status": "False", "reason": "Paused"}
    reasons = {n.name: n.reason for n in build([stalled, paused, instance("ok")])[0].children}
    assert reasons == {"ok": "Available", "p": "Paused", "s": "AdoptionConflict"}


def test_the_machine_readable_form_has_the_same_keys_everywhere() -> None:
    nodes = build([instance("crm")], secrets=[secret("crm-token")])
    keys = {"kind", "namespace", "name", "ready", "synced", "reason", "created", "detail", "children"}

    def check(node: dict[str, Any]) -> None:
        assert list(node) == list(tree.Node("", "", "").as_dict())
        assert set(node) == keys
        for child in node["children"]:
            check(child)

    for top in nodes:
        check(top.as_dict())
