"""What a user has in the cluster before the upgrade: 200 ConnectorInstances and two accounts,
created at the previous release's API version, the way its users wrote them.

- `cluster` namespace: instances of the ClusterConnectorAccount `shared` (its Secret in the
  operator's namespace);
- `team` namespace: a ConnectorAccount `team` of its own and its instances;
- `own` namespace: instances with their own credentials Secret (`credentialsSecretRef`);
- `observe` namespace: ObserveOnly objects adopting instances made on the platform beforehand
  (`spec.instanceID`), half with their own Secret, half through `shared` (`allowAdoption`).

Every third object of each namespace shapes its token Secret with `spec.tokenSecret.template`
(with the account secrets rendered in, `includeAccountSecrets`, where the object owns them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from kubernetes import client

from connector_operator.api.names import GROUP
from tests.integration.support import CLOSEIO_API_KEY, CLOSEIO_SECRET, hand_made, put_secret

CLUSTER_ACCOUNT, TEAM_ACCOUNT = "shared", "team"
ACCOUNT_SECRET = "oc-account"  # each Secret holding the platform's account secrets has this name
PLURALS = {
    "ConnectorInstance": "connectorinstances",
    "ConnectorAccount": "connectoraccounts",
    "ClusterConnectorAccount": "clusterconnectoraccounts",
}
# How many instances of each way to name credentials (200 together).
COUNTS = {"cluster": 60, "team": 50, "own": 50, "observe": 40}
CONFIGURATION = [
    {"key": "username", "valueFrom": {"secretKeyRef": {"name": CLOSEIO_SECRET, "key": "apiKey"}}}
]
CONFIG_JSON = '{"baseUrl": {{ apiURL | tojson }}, "instanceId": {{ instanceID }}}'
AUTHORIZATION = "User {{ userSecret }}, Organization {{ organizationSecret }}, Element {{ token }}"


@dataclass(frozen=True)
class Key:
    """One object: kind, namespace ('' for cluster-scoped) and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass
class Population:
    """The objects created, and the token Secrets they name (namespace, name)."""

    objects: list[Key]
    token_secrets: list[tuple[str, str]]

    templated: int = 0

    @property
    def instances(self) -> int:
        return sum(1 for key in self.objects if key.kind == "ConnectorInstance")

    def __str__(self) -> str:
        ways = (
            f"{COUNTS['cluster']} through a ClusterConnectorAccount, {COUNTS['team']} a ConnectorAccount, "
            f"{COUNTS['own']} their own Secret, {COUNTS['observe']} ObserveOnly"
        )
        accounts = len(self.objects) - self.instances
        return (
            f"{self.instances} ConnectorInstances ({ways}) and {accounts} accounts; "
            f"{len(self.token_secrets)} token Secrets, {self.templated} with a template"
        )


def body(kind: str, name: str, spec: dict[str, Any], version: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{version}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def token_secret(name: str, index: int, *, account_secrets: bool) -> dict[str, Any]:
    """`NAME-token`; every third one with a template (the account secrets in it when allowed)."""
    secret: dict[str, Any] = {"name": f"{name}-token"}
    if index % 3 == 0:
        data = {"config.json": CONFIG_JSON}
        if account_secrets:
            data["OC_AUTHORIZATION"] = AUTHORIZATION
        secret["template"] = {"includeAccountSecrets": account_secrets, "data": data}
    return secret


def made_on_the_platform(api_url: str, headers: dict[str, str], count: int) -> list[int]:
    """Instances made outside Kubernetes (as in the UI), for the ObserveOnly objects to adopt."""
    with httpx.Client(base_url=api_url, headers=headers, timeout=10) as platform:
        made = [platform.post("/instances", json=hand_made(f"made-by-hand-{i}")) for i in range(count)]
    for response in made:
        response.raise_for_status()
    return [int(response.json()["id"]) for response in made]


def specs(namespaces: dict[str, str], instance_ids: list[int]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, name, spec) of every instance."""
    cluster_ref = {"kind": "ClusterConnectorAccount", "name": CLUSTER_ACCOUNT}
    team_ref = {"kind": "ConnectorAccount", "name": TEAM_ACCOUNT}
    own_ref = {"name": ACCOUNT_SECRET}
    for group, prefix, ref in (("cluster", "shared", cluster_ref), ("team", "team", team_ref)):
        for i in range(COUNTS[group]):
            name = f"{prefix}-{i:03d}"
            yield namespaces[group], name, {
                "connectorKey": "closeio", "accountRef": ref, "configuration": CONFIGURATION,
                "tokenSecret": token_secret(name, i, account_secrets=False),
            }  # fmt: skip
    for i in range(COUNTS["own"]):
        name = f"own-{i:03d}"
        yield namespaces["own"], name, {
            "connectorKey": "closeio", "credentialsSecretRef": own_ref, "configuration": CONFIGURATION,
            "tags": ["crm", f"batch-{i % 4}"], "tokenSecret": token_secret(name, i, account_secrets=True),
        }  # fmt: skip
    for i, instance_id in enumerate(instance_ids):
        name = f"observed-{i:03d}"
        # Half through the cluster account (it allows adoption), half with their own Secret.
        credentials = {"accountRef": cluster_ref} if i % 2 else {"credentialsSecretRef": own_ref}
        yield namespaces["observe"], name, {
            "connectorKey": "closeio", **credentials, "instanceID": instance_id,
            "managementPolicy": "ObserveOnly",
            "tokenSecret": token_secret(name, i, account_secrets=not i % 2),
        }  # fmt: skip


@dataclass
class Creator:
    """Creates the population through the API, at `version`."""

    api: client.ApiClient
    version: str
    operator_namespace: str
    account: dict[str, str]  # userSecret, organizationSecret
    api_url: str

    def namespaces(self) -> dict[str, str]:
        core = client.CoreV1Api(self.api)
        names = {role: f"upgrade-{role}" for role in COUNTS}
        for name in names.values():
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
            put_secret(core, name, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
        return names

    def accounts(self, namespaces: dict[str, str]) -> list[Key]:
        core, custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        for namespace in (
            self.operator_namespace,
            namespaces["team"],
            namespaces["own"],
            namespaces["observe"],
        ):
            put_secret(core, namespace, ACCOUNT_SECRET, self.account)
        selected = [namespaces["cluster"], namespaces["observe"]]
        shared = {
            "credentialsSecretRef": {"name": ACCOUNT_SECRET, "namespace": self.operator_namespace},
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": selected}
                ]
            },
            "allowAdoption": True,
            "allowedConnectors": ["closeio"],
        }
        custom.create_cluster_custom_object(
            GROUP, self.version, PLURALS["ClusterConnectorAccount"],
            body("ClusterConnectorAccount", CLUSTER_ACCOUNT, shared, self.version),
        )  # fmt: skip
        team = {"credentialsSecretRef": {"name": ACCOUNT_SECRET}}
        custom.create_namespaced_custom_object(
            GROUP, self.version, namespaces["team"], PLURALS["ConnectorAccount"],
            body("ConnectorAccount", TEAM_ACCOUNT, team, self.version),
        )  # fmt: skip
        return [
            Key("ClusterConnectorAccount", "", CLUSTER_ACCOUNT),
            Key("ConnectorAccount", namespaces["team"], TEAM_ACCOUNT),
        ]

    def create(self, platform_headers: dict[str, str]) -> Population:
        namespaces = self.namespaces()
        keys = self.accounts(namespaces)
        instance_ids = made_on_the_platform(self.api_url, platform_headers, COUNTS["observe"])
        custom = client.CustomObjectsApi(self.api)
        secrets = []
        for namespace, name, spec in specs(namespaces, instance_ids):
            custom.create_namespaced_custom_object(
                GROUP, self.version, namespace, PLURALS["ConnectorInstance"],
                body("ConnectorInstance", name, spec, self.version),
            )  # fmt: skip
            keys.append(Key("ConnectorInstance", namespace, name))
            secrets.append((namespace, spec["tokenSecret"]["name"]))
        templated = sum(
            1 for _, _, spec in specs(namespaces, instance_ids) if "template" in spec["tokenSecret"]
        )
        return Population(keys, secrets, templated)
