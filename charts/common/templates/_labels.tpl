{{/* dict ctx [component]: the labels a selector may use; they never change on upgrade. */}}
{{- define "claimflow.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "claimflow.names.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* dict ctx [component]: the recommended app.kubernetes.io labels plus commonLabels. */}}
{{- define "claimflow.labels.standard" -}}
{{ include "claimflow.labels.matchLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: claimflow
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ include "claimflow.names.chart" .ctx }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* dict ctx [component]: metadata of a namespaced object named after the component. */}}
{{- define "claimflow.metadata" -}}
name: {{ .name | default (include "claimflow.names.component" .) }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "claimflow.labels.standard" . | nindent 2 }}
{{- with .annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
