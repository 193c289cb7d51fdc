{{/* The chart's name. */}}
{{- define "coxswain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name, with the chart's name unless it holds it already. */}}
{{- define "coxswain.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Names of cluster-scoped objects carry the namespace: two installs never clash. */}}
{{- define "coxswain.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "coxswain.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coxswain.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change on upgrade: the selector. */}}
{{- define "coxswain.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coxswain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "coxswain.labels" -}}
helm.sh/chart: {{ include "coxswain.chart" . }}
{{ include "coxswain.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coxswain
{{- end }}

{{- define "coxswain.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "coxswain.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: set the name of an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest pins it. */}}
{{- define "coxswain.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The trust anchor the subscription points at: {kind, name, key}. */}}
{{- define "coxswain.trustRef" -}}
{{- if .Values.trust.root }}
kind: ConfigMap
name: {{ include "coxswain.fullname" . }}-trust
key: root.json
{{- else if .Values.trust.existing.name }}
kind: {{ .Values.trust.existing.kind }}
name: {{ .Values.trust.existing.name }}
key: {{ .Values.trust.existing.key }}
{{- else }}
{{- fail "subscription.server is set but there is no trust anchor: pass the maintainers' trust.json with --set-file trust.root=trust.json, or name an existing ConfigMap or Secret with trust.existing.name" }}
{{- end }}
{{- end }}

{{/* Where the agent writes: the chart cache and helm's homes, and /tmp. */}}
{{- define "coxswain.cacheDir" -}}/var/cache/coxswain{{- end }}
