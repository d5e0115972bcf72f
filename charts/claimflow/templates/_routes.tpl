{{/* The routes whose subchart is enabled, as {path, service, port} for the traffic helpers. */}}
{{- define "claimflow.umbrella.backends" -}}
{{- range .Values.routes }}
{{- $sub := index $.Values .chart }}
{{- if $sub.enabled }}
- path: {{ .path }}
  service: {{ include "claimflow.names.dependencyFullname" (dict "ctx" $ "chart" .chart) }}
  port: {{ $sub.service.port }}
{{- end }}
{{- end }}
{{- end -}}
