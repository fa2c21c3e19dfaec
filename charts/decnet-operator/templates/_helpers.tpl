{{/* Names and labels shared by every template. */}}

{{- define "decnet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object name; each component adds its own word (-operator, -agent,
-webhook, -metrics). A release named "decnet" gives decnet-operator and decnet-agent; a
trailing "-operator" of the release name is dropped, so a release named after the chart
gives the same names instead of decnet-operator-operator.
*/}}
{{- define "decnet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else if .Values.nameOverride -}}
{{- printf "%s-%s" .Release.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- .Release.Name | trimSuffix "-operator" | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "decnet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "decnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: decnet-operator
{{- end -}}

{{- define "decnet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "decnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "decnet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "decnet.baseImage" -}}
{{- default (printf "decnet/base:%s" .Chart.AppVersion) .Values.operator.baseImage -}}
{{- end -}}

{{- define "decnet.operator.fullname" -}}
{{- printf "%s-operator" (include "decnet.fullname" .) -}}
{{- end -}}

{{- define "decnet.agent.fullname" -}}
{{- printf "%s-agent" (include "decnet.fullname" .) -}}
{{- end -}}

{{- define "decnet.webhook.fullname" -}}
{{- printf "%s-webhook" (include "decnet.fullname" .) -}}
{{- end -}}

{{- define "decnet.metrics.fullname" -}}
{{- printf "%s-metrics" (include "decnet.fullname" .) -}}
{{- end -}}

{{/* Where the agents keep their Leases: the release namespace, passed to both
processes as DECNET_SYSTEM_NAMESPACE (decnet.kube.names.SYSTEM_NAMESPACE_ENV). */}}
{{- define "decnet.systemNamespace" -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/* The webhook's serving certificate Secret (the user's, or the chart's / cert-manager's). */}}
{{- define "decnet.webhook.certSecret" -}}
{{- default (printf "%s-tls" (include "decnet.webhook.fullname" .)) .Values.webhook.certSecret -}}
{{- end -}}

{{/* The ServiceAccount user names RBAC and admission policies match on. */}}
{{- define "decnet.agent.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "decnet.agent.fullname" .) -}}
{{- end -}}

{{/*
Decky status fields the operator owns: an agent may not change them. Everything
else in status (agent, containers, activity) is the agent's. Kept equal to the
Decky status model minus decnet.kube.names.AGENT_STATUS_FIELDS by a unit test.
*/}}
{{- define "decnet.operatorStatusFields" -}}
addresses conditions history lastMutation lifecycle mutationRequest node observedGeneration plan planHash services servicesSummary
{{- end -}}

{{/*
The agent needs the privileged Pod Security level (hostNetwork, hostPath, root,
NET_ADMIN) and shares the release namespace with the operator. A namespace that
enforces baseline or restricted refuses the agent's pods while the DaemonSet itself
is accepted, so `helm install --wait` would only time out: fail early and say why.
No label is fine (the cluster's default level applies; privileged unless an admin
configured otherwise). Lookups are empty under `helm template`.
*/}}
{{- define "decnet.agent.podSecurityCheck" -}}
{{- if .Values.agent.podSecurityCheck -}}
{{- $ns := lookup "v1" "Namespace" "" .Release.Namespace -}}
{{- $level := "" -}}
{{- if $ns -}}
{{- $level = index ($ns.metadata.labels | default dict) "pod-security.kubernetes.io/enforce" | default "" -}}
{{- end -}}
{{- if and $level (ne $level "privileged") -}}
{{- fail (printf "namespace %s enforces Pod Security %q, but the decnet agent (hostNetwork, Docker socket, NET_ADMIN) needs privileged: kubectl label namespace %s pod-security.kubernetes.io/enforce=privileged --overwrite (or set agent.podSecurityCheck=false)" .Release.Namespace $level .Release.Namespace) -}}
{{- end -}}
{{- end -}}
{{- end -}}
