{{/* Names and labels shared by every template. Nothing here is random or looked up. */}}

{{- define "oco.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "oco.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "oco.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "oco.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "oco.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oco.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "oco.labels" -}}
{{ include "oco.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "oco.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "oco.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "oco.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Non-empty when a CA bundle is configured; where it is mounted and the file in it. */}}
{{- define "oco.caBundle" -}}
{{- with .Values.operator.caBundle }}{{ or .configMapName .secretName }}{{ end -}}
{{- end -}}

{{- define "oco.caBundleDir" -}}
/etc/open-connectors-operator/ca
{{- end -}}

{{- define "oco.caBundlePath" -}}
{{ include "oco.caBundleDir" . }}/ca-bundle.crt
{{- end -}}

{{/* The Secret in the release namespace that holds the operator's digest key. */}}
{{- define "oco.digestKeySecret" -}}
{{- printf "%s-digest-key" (include "oco.fullname" .) | trunc 253 -}}
{{- end -}}

{{/* The operator's identity as the API server names it, for the admission policies. */}}
{{- define "oco.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "oco.serviceAccountName" .) -}}
{{- end -}}

{{/* kopf peering: one ClusterKopfPeering, whatever the operator watches (kube/peering.py). A
KopfPeering in each watched namespace, kopf's own choice for a namespaced operator, would let anyone
who may write kopfpeerings in one of them (a Role on `*`) pause the operator for every namespace; no
namespaced grant reaches a cluster-scoped object. The operator creates it (create cannot be narrowed
by name), and lists, watches and patches only this one: kopf's list and watch select it by name
(handlers/setup.py), which lets RBAC narrow them to it. */}}
{{- define "oco.peeringRules" -}}
{{- if .Values.peering.enabled -}}
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [create]
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  resourceNames: [{{ .Values.peering.name | quote }}]
  verbs: [list, watch, patch]
{{- end }}
{{- end -}}

{{/* The operator's own permissions, shared by the ClusterRole and the namespaced Roles: exactly
the calls it makes (kube/secrets.py, kube/status.py, kopf's watches and event posts), no more.
No `get` on ConnectorInstances (kopf lists and watches them), no `update` anywhere (every write is
a patch), Events only created (kopf posts core/v1 Events and never patches them). */}}
{{- define "oco.rules" -}}
- apiGroups: [openconnectors.io]
  resources: [connectorinstances]
  verbs: [list, watch, patch]
- apiGroups: [openconnectors.io]
  resources: [connectorinstances/status]
  verbs: [patch]
# Secrets: read the referenced ones, label them for the operator's label-filtered watch, and
# create/patch/delete the token Secrets. RBAC cannot express a label or names chosen by users, so
# these verbs cover every Secret in scope; the admission policy (admissionpolicies.yaml) confines
# the writes to the operator's own Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Accounts (issue 10): read, never written but for the operator's finalizer on the object (patch;
# the account-writes policy confines it to metadata.finalizers) and the status subresource.
- apiGroups: [openconnectors.io]
  resources: [connectoraccounts]
  verbs: [get, list, watch, patch]
- apiGroups: [openconnectors.io]
  resources: [connectoraccounts/status]
  verbs: [patch]
{{- end -}}

{{/* Cluster-scoped reads that any install needs, namespaced or not: ClusterConnectorAccounts (as
for namespaced accounts: read, finalizer and status) and the labels of the namespaces whose
instances use them (a cluster account's namespaceSelector). */}}
{{- define "oco.clusterAccountRules" -}}
- apiGroups: [openconnectors.io]
  resources: [clusterconnectoraccounts]
  verbs: [get, list, watch, patch]
- apiGroups: [openconnectors.io]
  resources: [clusterconnectoraccounts/status]
  verbs: [patch]
{{- end -}}

{{/* Namespaces that hold ClusterConnectorAccounts' credentials Secrets but are not watched: the
release namespace and operator.accountSecretsNamespaces, without duplicates. A JSON list. */}}
{{- define "oco.accountSecretsNamespaces" -}}
{{- $all := prepend (.Values.operator.accountSecretsNamespaces | default list) .Release.Namespace | uniq -}}
{{- $unwatched := list -}}
{{- range $all }}{{ if not (has . $.Values.operator.watchNamespaces) }}{{ $unwatched = append $unwatched . }}{{ end }}{{ end -}}
{{- toJson $unwatched -}}
{{- end -}}
