{{/*
Labels on every object. app.kubernetes.io/version follows the image tag, so a
tag change shows in `kubectl get -L app.kubernetes.io/version`.
*/}}
{{- define "wiki.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coxswain-testdata
{{- end }}

{{/* Selector labels: stable across upgrades, so never the version. */}}
{{- define "wiki.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: web
{{- end }}
