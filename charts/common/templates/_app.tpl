{{/*
One helper per template file of a claimflow service chart (intake, adjudication,
audit-log), so each of those files is a single include. Components: `api` always,
`worker` when .Values.worker.enabled.
*/}}

{{- define "claimflow.app.components" -}}
{{- $components := list "api" -}}
{{- if and .Values.worker .Values.worker.enabled }}{{ $components = append $components "worker" }}{{ end -}}
{{- toJson $components -}}
{{- end -}}

{{- define "claimflow.app.deployments" -}}
{{- range include "claimflow.app.components" . | fromJsonArray }}
---
{{ include "claimflow.app.deployment" (dict "ctx" $ "component" .) }}
{{- end }}
{{- end -}}

{{/* The API's Service carries the chart's full name; the worker's serves /metrics only. */}}
{{- define "claimflow.app.services" -}}
{{- range include "claimflow.app.components" . | fromJsonArray }}
---
{{- $name := ternary (include "claimflow.names.fullname" $) "" (eq . "api") }}
{{- $port := ternary $.Values.service.port (index $.Values .).port (eq . "api") }}
{{ include "claimflow.traffic.service" (dict "ctx" $ "component" . "name" $name "port" $port) }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.hpas" -}}
{{- range include "claimflow.app.components" . | fromJsonArray }}
{{- if (index $.Values .).autoscaling.enabled }}
---
{{ include "claimflow.scaling.hpa" (dict "ctx" $ "component" .) }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.pdbs" -}}
{{- range include "claimflow.app.components" . | fromJsonArray }}
{{- if (index $.Values .).pdb.enabled }}
---
{{ include "claimflow.scaling.pdb" (dict "ctx" $ "component" .) }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
API: from the ingress controller or gateway, Prometheus and this release's test Pod;
worker: Prometheus only; migrations: nothing. All: egress to DNS, Kafka, PostgreSQL and the
collector as .Values.networkPolicy.egress lists them.
*/}}
{{- define "claimflow.app.networkPolicies" -}}
{{- $np := .Values.networkPolicy -}}
{{- if $np.enabled }}
{{- $apiFrom := concat $np.ingressFrom (include "claimflow.traffic.testPeer" (dict "ctx" .) | fromYamlArray) -}}
{{- $rules := dict
  "api" (list (dict "from" $apiFrom "port" "http") (dict "from" $np.metricsFrom "port" "http"))
  "worker" (list (dict "from" $np.metricsFrom "port" "http"))
-}}
{{- range include "claimflow.app.components" . | fromJsonArray }}
---
{{ include "claimflow.traffic.networkPolicy" (dict "ctx" $ "component" . "rules" (index $rules .)) }}
{{- end }}
{{- if .Values.migrations.enabled }}
---
{{ include "claimflow.traffic.networkPolicy" (dict "ctx" . "component" "migrate" "rules" list) }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.serviceMonitor" -}}
{{- if .Values.serviceMonitor.enabled }}
{{- include "claimflow.traffic.serviceMonitor" (dict "ctx" .) }}
{{- end }}
{{- end -}}

{{/* The chart's own routes: every path of .Values.routes to its API Service. */}}
{{- define "claimflow.app.backends" -}}
{{- range .Values.routes }}
- path: {{ . }}
  service: {{ include "claimflow.names.fullname" $ }}
  port: {{ $.Values.service.port }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.ingress" -}}
{{- if .Values.ingress.enabled }}
{{- include "claimflow.traffic.ingress" (dict "ctx" . "backends" (include "claimflow.app.backends" . | fromYamlArray)) }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.httpRoute" -}}
{{- if .Values.httpRoute.enabled }}
{{- include "claimflow.traffic.httpRoute" (dict "ctx" . "backends" (include "claimflow.app.backends" . | fromYamlArray)) }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}
{{- include "claimflow.serviceAccount" (dict "ctx" . "automount" false) }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.migrationsJob" -}}
{{- if .Values.migrations.enabled }}
{{- include "claimflow.app.migrations" . }}
{{- end }}
{{- end -}}

{{- define "claimflow.app.notes" -}}
{{- $svc := include "claimflow.names.fullname" . -}}
{{ .Chart.Name }} {{ .Chart.AppVersion }} is installed as release {{ .Release.Name }} in namespace {{ .Release.Namespace }}.

API:      http://{{ $svc }}.{{ .Release.Namespace }}.svc:{{ .Values.service.port }} (routes: {{ join ", " .Values.routes }})
{{- if and .Values.worker .Values.worker.enabled }}
Worker:   deployment {{ include "claimflow.names.component" (dict "ctx" . "component" "worker") }}, /healthz /readyz /metrics on port {{ .Values.worker.port }}
{{- end }}
{{- if .Values.migrations.enabled }}
Migrations ran as the hook Job {{ include "claimflow.names.component" (dict "ctx" . "component" "migrate") }} before the pods started.
{{- end }}
{{- if include "claimflow.config.mappedSecret" . }}
Credentials: Secret {{ .Values.existingSecret }} ({{ range $i, $setting := keys .Values.existingSecretKeys | sortAlpha }}{{ if $i }}, {{ end }}key {{ index $.Values.existingSecretKeys $setting }} as {{ $setting }}{{ end }})
{{- if include "claimflow.config.generatedSecretData" . | fromYaml }}, the rest from the generated {{ include "claimflow.config.generatedSecretName" . }}{{ end }}.
{{- else }}
Credentials: Secret {{ include "claimflow.config.secretName" . }}{{ if not .Values.existingSecret }} (generated from values; use existingSecret in production){{ end }}.
{{- end }}
{{- if .Values.ingress.enabled }}
Ingress:  http{{ if .Values.ingress.tls }}s{{ end }}://{{ .Values.ingress.host }}
{{- end }}

Try it:
  kubectl -n {{ .Release.Namespace }} port-forward svc/{{ $svc }} {{ .Values.service.port }}
  curl -s http://127.0.0.1:{{ .Values.service.port }}/readyz
  helm test {{ .Release.Name }} -n {{ .Release.Namespace }}
{{- end -}}
