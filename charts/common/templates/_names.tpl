{{/*
Every helper here is namespaced `claimflow.` and takes either the chart context or a dict
`{ctx: <chart context>, component: <name>}`; the component (api, worker, migrate, test,
operator) becomes the `app.kubernetes.io/component` label and the object name suffix.
*/}}

{{- define "claimflow.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "claimflow.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or the release name alone when it already names the chart. */}}
{{- define "claimflow.names.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* dict ctx component: <fullname>-<component>. */}}
{{- define "claimflow.names.component" -}}
{{- printf "%s-%s" (include "claimflow.names.fullname" .ctx | trunc 55 | trimSuffix "-") .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
dict ctx chart: the fullname a dependency chart gives itself, for an umbrella that points at
its subcharts' Services. Helm has already merged the subchart's defaults into its values.
*/}}
{{- define "claimflow.names.dependencyFullname" -}}
{{- $values := index .ctx.Values .chart | default dict -}}
{{- include "claimflow.names.fullname" (dict "Chart" (dict "Name" .chart) "Release" .ctx.Release "Values" $values) -}}
{{- end -}}

{{/* The ServiceAccount the chart's long-running pods use. */}}
{{- define "claimflow.names.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "claimflow.names.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
