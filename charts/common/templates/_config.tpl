{{/*
Settings reach the services as CLAIMFLOW_* variables from one ConfigMap; secrets as files in
CLAIMFLOW_SECRETS_DIR (pydantic-settings reads a file named after the variable in lower
case), so they never show in `kubectl describe` or the process environment.
*/}}
{{- define "claimflow.config.secretsDir" -}}/var/run/secrets/claimflow{{- end -}}

{{/* The ConfigMap's data: computed settings first, then .Values.settings (which may override). */}}
{{- define "claimflow.config.data" -}}
{{- $global := .Values.global | default dict -}}
{{- $kafka := merge (dict) ($global.kafka | default dict) .Values.kafka -}}
{{- $data := dict
  "CLAIMFLOW_ENVIRONMENT" .Values.environment
  "CLAIMFLOW_LOG_LEVEL" .Values.logLevel
  "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS" $kafka.bootstrapServers
  "CLAIMFLOW_KAFKA_TOPIC_PREFIX" ($kafka.topicPrefix | default "")
-}}
{{- with ($global.otlpEndpoint | default .Values.otlpEndpoint) }}
{{- $_ := set $data "OTEL_EXPORTER_OTLP_ENDPOINT" . }}
{{- end }}
{{- /* The services bind 127.0.0.1 by default; in a pod they must answer the kubelet. */}}
{{- $_ := set $data "CLAIMFLOW_HTTP_HOST" "0.0.0.0" }}
{{- if .Values.api }}
{{- $_ := set $data "CLAIMFLOW_HTTP_PORT" (toString .Values.api.port) }}
{{- end }}
{{- if .Values.worker }}
{{- $_ := set $data "CLAIMFLOW_WORKER_HTTP_PORT" (toString .Values.worker.port) }}
{{- end }}
{{- if hasKey .Values "secrets" }}
{{- $_ := set $data "CLAIMFLOW_SECRETS_DIR" (include "claimflow.config.secretsDir" .) }}
{{- end }}
{{- if hasKey .Values "watchNamespaces" }}
{{- $_ := set $data "CLAIMFLOW_OPERATOR_NAMESPACES" (join "," .Values.watchNamespaces) }}
{{- $_ := set $data "CLAIMFLOW_OPERATOR_HEALTH_PORT" (toString .Values.healthPort) }}
{{- $_ := set $data "CLAIMFLOW_OPERATOR_METRICS_PORT" (toString .Values.metricsPort) }}
{{- end }}
{{- range $key, $value := .Values.settings }}
{{- $_ := set $data $key (toString $value) }}
{{- end }}
{{- toYaml $data }}
{{- end -}}

{{- define "claimflow.config.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "claimflow.metadata" (dict "ctx" . "name" (include "claimflow.names.fullname" .)) | nindent 2 }}
data:
  {{- include "claimflow.config.data" . | nindent 2 }}
{{- end -}}

{{/*
The generated Secret's files, from .Values.secrets: databaseUrl -> claimflow_database_url;
lists and maps (apiKeys) as JSON.
*/}}
{{- define "claimflow.config.secretData" -}}
{{- $files := dict -}}
{{- range $key, $value := .secrets }}
{{- if or (kindIs "slice" $value) (kindIs "map" $value) }}
{{- $_ := set $files (printf "claimflow_%s" (snakecase $key)) (toJson $value) }}
{{- else if $value }}
{{- $_ := set $files (printf "claimflow_%s" (snakecase $key)) (toString $value) }}
{{- end }}
{{- end }}
{{- toYaml $files }}
{{- end -}}

{{/*
dict ctx name secrets required: a generated Secret. It is a pre-install/pre-upgrade hook
because the migrations hook Job reads it before the release's ordinary objects exist.
*/}}
{{- define "claimflow.config.secret" -}}
{{- range .required }}
{{- if not (index $.secrets .) }}
{{- fail (printf "%s: set %s.%s, or name an existing Secret in %s" $.ctx.Chart.Name $.path . $.existingPath) }}
{{- end }}
{{- end }}
apiVersion: v1
kind: Secret
metadata:
  {{- include "claimflow.metadata" (dict "ctx" .ctx "name" .name "annotations" (include "claimflow.hooks.preInstall" "-10" | fromYaml)) | nindent 2 }}
type: Opaque
stringData:
  {{- include "claimflow.config.secretData" . | nindent 2 }}
{{- end -}}

{{- define "claimflow.hooks.preInstall" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/* The Secret mounted as CLAIMFLOW_SECRETS_DIR: existingSecret, or the generated one. */}}
{{- define "claimflow.config.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-credentials" (include "claimflow.names.fullname" .)) -}}
{{- end -}}

{{/* Pod annotations that roll the pods when their settings or generated secrets change. */}}
{{- define "claimflow.config.checksums" -}}
checksum/config: {{ include "claimflow.config.data" . | sha256sum }}
{{- if and (hasKey .Values "secrets") (not .Values.existingSecret) }}
checksum/secret: {{ include "claimflow.config.secretData" (dict "secrets" .Values.secrets) | sha256sum }}
{{- end }}
{{- end -}}

{{/* extraEnv: EnvVar objects added to every container (after the chart's own). */}}
{{- define "claimflow.config.extraEnv" -}}
{{- with .Values.extraEnv }}
{{- toYaml . }}
{{- end }}
{{- end -}}
