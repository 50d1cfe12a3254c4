"""The Helm chart renders what it promises, for the default and a namespaced install.

helm itself is built from its Go module (pinned in hack/controlplane/build.py) and cached.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from connector_operator.settings import DEFAULT_ALLOWED_API_HOSTS
from hack import manifests
from tests.chart.support import CHART, ROOT, deployment_env, helm, render

DEPLOY = ROOT / "deploy" / "open-connectors-operator.yaml"
FULLNAME = "oco-open-connectors-operator"


def kinds(objects: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((o["kind"], o["metadata"].get("namespace")) for o in objects)


def test_chart_crds_are_the_generated_ones() -> None:
    # All three: ConnectorInstance and the two account kinds (issue 10); no stale one of ours.
    generated = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert len(generated) == 3
    assert sorted(p.name for p in (CHART / "crds").glob("openconnectors.io_*")) == generated
    for name in generated:
        assert (CHART / "crds" / name).read_text() == (ROOT / "crds" / name).read_text(), (
            "run `make crds` (it writes the chart's copies too)"
        )


def test_helm_lint_passes() -> None:
    result = helm("lint", str(CHART), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("replicaCount=-1", "replicaCount"),
        ("peering.enabled=maybe", "enabled"),
        ("terminationGracePeriodSeconds=10", "terminationGracePeriodSeconds"),
        ("operator.logLevel=LOUD", "logLevel"),
        ("operator.watchNamespaces[0]=Not_A_Namespace", "watchNamespaces"),
        ("operator.mistyped=1", "mistyped"),
        ("image.digest=latest", "digest"),
        ("operator.allowedAPIHosts=null", "allowedAPIHosts"),
        ("operator.allowedAPIHosts={}", "allowedAPIHosts"),
        ("operator.allowedAPIHosts[0]=https://host/path", "allowedAPIHosts"),
        ("operator.allowInsecureHTTP=yes", "allowInsecureHTTP"),
        ("admissionPolicies.enabled=maybe", "enabled"),
        ("admissionPolicies.statusWriters=admins", "statusWriters"),
        ("rbac.aggregateToDefaultRoles=maybe", "aggregateToDefaultRoles"),
        ("operator.caBundle.key=a/b", "key"),
    ],
)
def test_mistyped_values_are_rejected(value: str, complaint: str) -> None:
    result = helm("template", "x", str(CHART), "--set", value)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_default_render_is_cluster_wide_secure_and_deterministic() -> None:
    objects = render()
    assert render() == objects  # nothing random, nothing looked up
    assert kinds(objects) == [
        *[("ClusterRole", None)] * 3,  # the operator's; the tenants' edit and view (aggregated)
        ("ClusterRoleBinding", None),
        ("Deployment", "oco"),
        ("ServiceAccount", "oco"),
        *[("ValidatingAdmissionPolicy", None)] * 5,
        *[("ValidatingAdmissionPolicyBinding", None)] * 5,
    ]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OCO_NAMESPACES"] == ""
    assert env["OCO_METRICS_PORT"] == "9090"
    assert env["OCO_ALLOWED_API_HOSTS"] == ",".join(DEFAULT_ALLOWED_API_HOSTS)
    assert env["OCO_ALLOW_INSECURE_HTTP"] == "false"
    assert env["OCO_DEFAULT_ACCOUNT"] == ""  # none: an instance naming no account is refused
    assert env["OCO_ACCOUNT_SECRETS_NAMESPACES"] == "oco"
    assert "SSL_CERT_FILE" not in env
    # The tag defaults to the chart's appVersion (the release's version: tests/contracts/test_versions.py).
    assert container["image"].endswith(":" + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def test_namespaced_render_has_roles_only_in_the_watched_namespaces() -> None:
    objects = render("--set", "operator.watchNamespaces={sales,support}")
    assert kinds(objects) == [
        ("ClusterRole", None),  # ClusterConnectorAccounts and the watched namespaces' labels
        ("ClusterRole", None),  # the one ClusterKopfPeering (peering)
        *[("ClusterRole", None)] * 2,  # the tenants' edit and view (aggregated)
        *[("ClusterRoleBinding", None)] * 2,
        ("Deployment", "oco"),
        ("Role", "oco"),  # the operator's own Secret in its namespace
        ("Role", "oco"),  # the cluster accounts' Secrets in its namespace
        ("Role", "sales"),
        ("Role", "support"),
        ("RoleBinding", "oco"),
        ("RoleBinding", "oco"),
        ("RoleBinding", "sales"),
        ("RoleBinding", "support"),
        ("ServiceAccount", "oco"),
        *[("ValidatingAdmissionPolicy", None)] * 5,
        *[("ValidatingAdmissionPolicyBinding", None)] * 5,
    ]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OCO_NAMESPACES"] == "sales,support"
    bindings = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"].endswith("PolicyBinding")}
    # References are checked, and status kept the operator's, where this operator acts (and on
    # every ClusterConnectorAccount: a namespaceSelector never skips a cluster-scoped object); its
    # own writes are confined everywhere.
    for name in ("secret-references", "secret-holds", "status-writes"):
        assert bindings[f"oco-open-connectors-operator-{name}"]["matchResources"] == {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["sales", "support"]}
                ]
            }
        }
    assert "matchResources" not in bindings["oco-open-connectors-operator-secret-writes"]
    assert "matchResources" not in bindings["oco-open-connectors-operator-account-writes"]


def test_rbac_grants_only_the_calls_the_operator_makes() -> None:
    """No `get` on ConnectorInstances, no `update` anywhere, Events only created; accounts read,
    patched (finalizer) and their status written; Secrets keep create/patch/delete (RBAC cannot
    narrow them: the admission policy does)."""
    for args, kind in (((), "ClusterRole"), (("--set", "operator.watchNamespaces={sales}"), "Role")):
        [role] = [
            o
            for o in render(*args)
            if o["kind"] == kind
            and o["metadata"]["name"] == FULLNAME
            and o["metadata"].get("namespace") != "oco"
        ]
        # kopf's peering rules name one object for patch: test_peering_rbac_environment_and_grace_period.
        merged: dict[tuple[str, str], set[str]] = {}
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    if group != "kopf.dev":
                        merged.setdefault((group, resource), set()).update(rule["verbs"])
        rules = {key: sorted(verbs) for key, verbs in merged.items()}
        expected = {
            ("openconnectors.io", "connectorinstances"): ["list", "patch", "watch"],
            ("openconnectors.io", "connectorinstances/status"): ["patch"],
            ("", "secrets"): ["create", "delete", "get", "list", "patch", "watch"],
            ("", "events"): ["create"],
            ("openconnectors.io", "connectoraccounts"): ["get", "list", "patch", "watch"],
            ("openconnectors.io", "connectoraccounts/status"): ["patch"],
        }
        if kind == "ClusterRole":
            expected[("apiextensions.k8s.io", "customresourcedefinitions")] = ["get", "list", "watch"]
            expected[("apiextensions.k8s.io", "customresourcedefinitions/status")] = ["patch"]
            # The storage migration's get and patch: the three CRDs by name, no other.
            ours = sorted(
                f"{p}.openconnectors.io"
                for p in ("connectorinstances", "connectoraccounts", "clusterconnectoraccounts")
            )
            named = [
                r
                for r in role["rules"]
                if r["apiGroups"] == ["apiextensions.k8s.io"] and "list" not in r["verbs"]
            ]
            assert [sorted(r["resourceNames"]) for r in named] == [ours, ours]
            expected[("openconnectors.io", "clusterconnectoraccounts")] = ["get", "list", "patch", "watch"]
            expected[("openconnectors.io", "clusterconnectoraccounts/status")] = ["patch"]
            expected[("", "namespaces")] = ["get", "list", "watch"]
        assert rules == expected
    namespaced = render("--set", "operator.watchNamespaces={sales}")
    [own] = [o for o in namespaced if o["kind"] == "Role" and o["metadata"]["name"] == f"{FULLNAME}-own"]
    env = deployment_env("--set", "operator.watchNamespaces={sales}")
    assert (env["OCO_OPERATOR_NAMESPACE"], env["OCO_DIGEST_KEY_SECRET"]) == (
        "oco",
        "oco-open-connectors-operator-digest-key",
    )
    assert own["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [env["OCO_DIGEST_KEY_SECRET"]],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def test_admission_policies_bind_the_operators_own_identity_and_can_be_turned_off() -> None:
    objects = render("--set", "serviceAccount.name=custom-sa", namespace="platform")
    [writes] = [
        o for o in objects if o["metadata"]["name"].endswith("-secret-writes") and "Binding" not in o["kind"]
    ]
    assert writes["spec"]["matchConditions"] == [
        {
            "name": "the-operator",
            "expression": "request.userInfo.username == 'system:serviceaccount:platform:custom-sa'",
        }
    ]
    for policy in (o for o in objects if o["kind"].startswith("ValidatingAdmissionPolicy")):
        assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
        if policy["kind"] == "ValidatingAdmissionPolicy":
            assert policy["spec"]["failurePolicy"] == "Fail"
        else:
            assert policy["spec"]["validationActions"] == ["Deny"]
    off = render("--set", "admissionPolicies.enabled=false")
    assert not [o for o in off if "AdmissionPolicy" in o["kind"]]


def test_status_is_the_operators_to_write_but_for_the_status_writers_groups() -> None:
    """Issue 18: the status-writes policy matches the status subresources (a rule on the kinds
    would not), lets the operator's own writes through unevaluated and the statusWriters groups
    pass; cluster-wide it is bound everywhere."""

    def status_writes(*args: str) -> tuple[dict[str, Any], dict[str, Any]]:
        objects = render("--set", "serviceAccount.name=custom-sa", *args, namespace="platform")
        [policy] = [o for o in objects if o["metadata"]["name"] == f"{FULLNAME}-status-writes"
                    and o["kind"] == "ValidatingAdmissionPolicy"]  # fmt: skip
        [binding] = [o for o in objects if o["metadata"]["name"] == f"{FULLNAME}-status-writes"
                     and o["kind"] == "ValidatingAdmissionPolicyBinding"]  # fmt: skip
        return policy["spec"], binding["spec"]

    policy, binding = status_writes()
    assert policy["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["openconnectors.io"],
            "apiVersions": ["*"],
            "resources": [
                "connectorinstances/status", "connectoraccounts/status", "clusterconnectoraccounts/status"
            ],
            "operations": ["CREATE", "UPDATE"],
        }
    ]  # fmt: skip
    assert policy["matchConditions"] == [
        {
            "name": "not-the-operator",
            "expression": "request.userInfo.username != 'system:serviceaccount:platform:custom-sa'",
        }
    ]
    [validation] = policy["validations"]
    assert validation["expression"].endswith("request.userInfo.groups.exists(g, g in [])")
    assert "only system:serviceaccount:platform:custom-sa may" in validation["messageExpression"]
    assert binding == {"policyName": f"{FULLNAME}-status-writes", "validationActions": ["Deny"]}

    policy, _ = status_writes("--set", "admissionPolicies.statusWriters={platform-admins,oidc:sre}")
    [validation] = policy["validations"]
    assert validation["expression"].endswith('g in ["platform-admins","oidc:sre"])')
    assert (
        "only system:serviceaccount:platform:custom-sa and members of platform-admins, oidc:sre may"
        in validation["messageExpression"]
    )


def test_the_default_roles_get_the_kinds_without_status_by_aggregation() -> None:
    """Issue 18: admin and edit manage ConnectorInstances and ConnectorAccounts, never their status
    and never ClusterConnectorAccounts (the platform team's); view reads all three."""
    roles = {
        o["metadata"]["name"]: o for o in render("--set", "rbac.create=false") if o["kind"] == "ClusterRole"
    }
    assert set(roles) == {f"{FULLNAME}-edit", f"{FULLNAME}-view"}  # apart from rbac.create
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    edit, view = roles[f"{FULLNAME}-edit"], roles[f"{FULLNAME}-view"]
    assert {k: v for k, v in edit["metadata"]["labels"].items() if k.startswith(aggregate)} == {
        f"{aggregate}admin": "true", f"{aggregate}edit": "true"
    }  # fmt: skip
    assert {k: v for k, v in view["metadata"]["labels"].items() if k.startswith(aggregate)} == {
        f"{aggregate}view": "true"
    }
    assert edit["rules"] == [
        {
            "apiGroups": ["openconnectors.io"],
            "resources": ["connectorinstances", "connectoraccounts"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
        }
    ]
    assert view["rules"] == [
        {
            "apiGroups": ["openconnectors.io"],
            "resources": ["connectorinstances", "connectoraccounts", "clusterconnectoraccounts"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["openconnectors.io"],
            "resources": [
                "connectorinstances/status", "connectoraccounts/status", "clusterconnectoraccounts/status"
            ],
            "verbs": ["get"],
        },
    ]  # fmt: skip
    off = render("--set", "rbac.aggregateToDefaultRoles=false")
    assert not [o for o in off if o["metadata"]["name"] in roles]


@pytest.mark.parametrize("source", ["configMapName", "secretName"])
def test_a_ca_bundle_is_mounted_and_named_by_ssl_cert_file(source: str) -> None:
    [deployment] = [
        o
        for o in render(
            "--set", f"operator.caBundle.{source}=corporate-ca", "--set", "operator.caBundle.key=ca.pem"
        )
        if o["kind"] == "Deployment"
    ]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "ca-bundle"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "ca-bundle"]
    assert env["SSL_CERT_FILE"] == f"{mount['mountPath']}/ca-bundle.crt"
    assert mount["readOnly"] is True
    items = [{"key": "ca.pem", "path": "ca-bundle.crt"}]
    if source == "configMapName":
        assert volume["configMap"] == {"name": "corporate-ca", "items": items}
    else:
        assert volume["secret"] == {"secretName": "corporate-ca", "items": items}


def test_a_ca_bundle_comes_from_one_source_only() -> None:
    both = ("--set", "operator.caBundle.configMapName=a", "--set", "operator.caBundle.secretName=b")
    result = helm("template", "x", str(CHART), *both)
    assert result.returncode != 0
    assert "caBundle" in result.stderr


def test_allowlist_and_plain_http_values_reach_the_operator() -> None:
    objects = render(
        "--set", "operator.allowedAPIHosts={api.example.test,*.internal:8443}",
        "--set", "operator.allowInsecureHTTP=true",
        "--set", "extraEnv[0].name=HTTPS_PROXY", "--set", "extraEnv[0].value=http://proxy:3128",
    )  # fmt: skip
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OCO_ALLOWED_API_HOSTS"] == "api.example.test,*.internal:8443"
    assert env["OCO_ALLOW_INSECURE_HTTP"] == "true"
    assert env["HTTPS_PROXY"] == "http://proxy:3128"


def test_digest_wins_over_the_tag() -> None:
    digest = "sha256:" + "a" * 64
    [deployment] = [o for o in render("--set", f"image.digest={digest}") if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f"@{digest}")


def test_optional_objects_render_when_enabled() -> None:
    objects = render(
        "--set", "metrics.service.enabled=true",
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.renderMode=always",
        "--set", "podDisruptionBudget.enabled=true",
        "--set", "networkPolicy.enabled=true",
        "--set", "networkPolicy.apiServer[0].cidr=10.0.0.1/32",
        "--set", "networkPolicy.apiServer[0].ports={6443}",
    )  # fmt: skip
    found = {o["kind"] for o in objects}
    assert {"Service", "ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"} <= found
    [policy] = [o for o in objects if o["kind"] == "NetworkPolicy"]
    cidrs = [
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert cidrs == ["10.0.0.1/32", "0.0.0.0/0"]


def test_service_monitor_is_skipped_without_its_crd() -> None:
    objects = render("--set", "metrics.service.enabled=true", "--set", "metrics.serviceMonitor.enabled=true")
    assert "ServiceMonitor" not in {o["kind"] for o in objects}
    assert "Service" in {o["kind"] for o in objects}


def test_no_hook_can_delete_anything_on_uninstall() -> None:
    for template in (CHART / "templates").glob("*.yaml"):
        assert "helm.sh/hook" not in template.read_text(), template.name


def _leaf_paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for key, sub in schema.get("properties", {}).items():
        path = (*prefix, key)
        paths |= _leaf_paths(sub, path) if "properties" in sub else {path}
    return paths


def test_every_value_is_documented_and_valid_against_the_schema() -> None:
    import jsonschema

    text = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(text), schema)
    leaves = _leaf_paths(schema)
    stack: list[tuple[int, str]] = []
    documented: set[tuple[str, ...]] = set()
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        stack = [(i, k) for i, k in stack if i < indent]
        stack.append((indent, key))
        path = tuple(k for _, k in stack)
        if path in leaves and number and lines[number - 1].strip().startswith("#"):
            documented.add(path)
    assert leaves - documented == set(), "values without a comment right above them"


def test_plain_manifests_are_up_to_date() -> None:
    assert manifests.render() == DEPLOY.read_text(), "run `make manifests` and commit deploy/"


def test_namespace_names_that_yaml_reads_as_booleans_stay_names() -> None:
    objects = render("--set", "operator.watchNamespaces={on}", namespace="no")
    assert {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]} == {"no", "on"}


@pytest.mark.parametrize(
    ("args", "role"),
    [((), FULLNAME), (("--set", "operator.watchNamespaces={sales}"), f"{FULLNAME}-peering")],
    ids=["cluster", "namespaced"],
)
def test_peering_rbac_environment_and_grace_period(args: tuple[str, ...], role: str) -> None:
    """kopf peering (a second copy pauses): the operator creates its one ClusterKopfPeering, and
    lists, watches and patches only that one; no Role in a watched namespace names kopf.dev (a
    KopfPeering there would be a pause switch for anyone who may write it, tenant-findings N7); the
    pod names itself to kopf; the grace period is set."""
    objects = render(*args)
    [cluster_role] = [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == role]
    assert [rule for rule in cluster_role["rules"] if rule["apiGroups"] == ["kopf.dev"]] == [
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["create"]},
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"],
         "resourceNames": ["open-connectors-operator"], "verbs": ["list", "watch", "patch"]},
    ]  # fmt: skip
    [binding] = [o for o in objects if o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"] == role]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": "oco"}]
    assert "kopf.dev" not in json.dumps([o for o in objects if o["kind"] == "Role"])
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}
    assert env["OCO_PEERING"] == "open-connectors-operator"
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert {p.name for p in (CHART / "crds").glob("kopf.dev_*.yaml")} == {
        "kopf.dev_kopfpeerings.yaml", "kopf.dev_clusterkopfpeerings.yaml"
    }  # fmt: skip


def test_allowed_hosts_are_looked_up_as_written_before_the_search_domains() -> None:
    """tenant-findings N18: with the kubelet's ndots 5, `oc.corp` is first looked up as
    `oc.corp.<namespace>.svc.cluster.local`, `oc.corp.svc.cluster.local` (Service `oc` of a namespace
    `corp`), ...; ndots 1 looks up any name with a dot as written first. Configurable, and null
    leaves the cluster's defaults."""

    def dns_config(*args: str) -> Any:
        [deployment] = [o for o in render(*args) if o["kind"] == "Deployment"]
        return deployment["spec"]["template"]["spec"].get("dnsConfig")

    assert dns_config() == {"options": [{"name": "ndots", "value": "1"}]}
    assert dns_config("--set", "operator.watchNamespaces={sales}") == dns_config()
    two = ("--set-string", "dnsConfig.options[0].name=ndots", "--set-string", "dnsConfig.options[0].value=2")
    assert dns_config(*two) == {"options": [{"name": "ndots", "value": "2"}]}
    assert dns_config("--set", "dnsConfig=null") is None
    result = helm("template", "x", str(CHART), "--set", "dnsConfig.ndots=1")
    assert result.returncode != 0
    assert "ndots" in result.stderr


def test_more_than_one_replica_needs_peering() -> None:
    [deployment] = [o for o in render("--set", "replicaCount=2") if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    result = helm("template", "x", str(CHART), "--set", "replicaCount=2", "--set", "peering.enabled=false")
    assert result.returncode != 0
    assert "replicaCount above 1 needs peering.enabled" in result.stderr
    disabled = render("--set", "peering.enabled=false")
    without = [o for o in disabled if o["kind"] in ("ClusterRole", "Deployment")]
    assert "kopf.dev" not in json.dumps(without)
    assert "OCO_PEERING" not in json.dumps(without)
