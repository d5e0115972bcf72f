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
{{- with $kafka.securityProtocol }}
{{- $_ := set $data "CLAIMFLOW_KAFKA_SECURITY_PROTOCOL" . }}
{{- end }}
{{- with $kafka.saslMechanism }}
{{- $_ := set $data "CLAIMFLOW_KAFKA_SASL_MECHANISM" . }}
{{- end }}
{{- with $kafka.saslUsername }}
{{- $_ := set $data "CLAIMFLOW_KAFKA_SASL_USERNAME" . }}
{{- end }}
{{- /* An unmapped existingSecret holds whatever files it holds: trusted to hold the password. */}}
{{- $wholeSecret := and .Values.existingSecret (not .Values.existingSecretKeys) }}
{{- if and (hasPrefix "SASL_" ($kafka.securityProtocol | default "")) (not $wholeSecret) (not (include "claimflow.config.hasSecret" (dict "ctx" . "setting" "kafkaSaslPassword"))) }}
{{- fail (printf "%s: kafka.securityProtocol %s needs the Kafka user's password: secretFiles.kafkaSaslPassword: {secret: <the KafkaUser's name>, key: password} (or, in a service chart, secrets.kafkaSaslPassword)" .Chart.Name $kafka.securityProtocol) }}
{{- end }}
{{- with ($global.otlpEndpoint | default .Values.otlpEndpoint) }}
{{- $_ := set $data "OTEL_EXPORTER_OTLP_ENDPOINT" . }}
{{- end }}
{{- /* Each span says which environment sent it (the SDK reads this variable into its
resource); the gateway Collector cannot tell. */}}
{{- $_ := set $data "OTEL_RESOURCE_ATTRIBUTES" (printf "deployment.environment.name=%s" .Values.environment) }}
{{- /* The services bind 127.0.0.1 by default; in a pod they must answer the kubelet. */}}
{{- $_ := set $data "CLAIMFLOW_HTTP_HOST" "0.0.0.0" }}
{{- if .Values.api }}
{{- $_ := set $data "CLAIMFLOW_HTTP_PORT" (toString .Values.api.port) }}
{{- end }}
{{- if .Values.worker }}
{{- $_ := set $data "CLAIMFLOW_WORKER_HTTP_PORT" (toString .Values.worker.port) }}
{{- end }}
{{- if or (hasKey .Values "secrets") .Values.secretFiles }}
{{- $_ := set $data "CLAIMFLOW_SECRETS_DIR" (include "claimflow.config.secretsDir" .) }}
{{- end }}
{{- if hasKey .Values "secrets" }}
{{- /* Re-read when the kubelet updates the mounted Secret: keys change without a restart. */}}
{{- $_ := set $data "CLAIMFLOW_API_KEYS_FILE" (printf "%s/claimflow_api_keys" (include "claimflow.config.secretsDir" .)) }}
{{- /* libpq's variables, which asyncpg honours: the TLS mode of a database URL that names
none (CloudNativePG's `uri` does not), and the CA that verifies the server. */}}
{{- with .Values.databaseSslMode }}
{{- $_ := set $data "PGSSLMODE" . }}
{{- end }}
{{- if include "claimflow.config.hasSecret" (dict "ctx" . "setting" "databaseCaCert") }}
{{- $_ := set $data "PGSSLROOTCERT" (printf "%s/claimflow_database_ca_cert" (include "claimflow.config.secretsDir" .)) }}
{{- end }}
{{- if include "claimflow.config.hasSecret" (dict "ctx" . "setting" "kafkaCaCert") }}
{{- $_ := set $data "CLAIMFLOW_KAFKA_SSL_CAFILE" (printf "%s/claimflow_kafka_ca_cert" (include "claimflow.config.secretsDir" .)) }}
{{- end }}
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
{{- .Values.existingSecret | default (include "claimflow.config.generatedSecretName" .) -}}
{{- end -}}

{{- define "claimflow.config.generatedSecretName" -}}
{{- printf "%s-credentials" (include "claimflow.names.fullname" .) -}}
{{- end -}}

{{/* "true" when existingSecret provides some settings under keys of its own (existingSecretKeys). */}}
{{- define "claimflow.config.mappedSecret" -}}
{{- if and .Values.existingSecret .Values.existingSecretKeys }}true{{ end -}}
{{- end -}}

{{/* .Values.secrets without the settings existingSecretKeys takes from existingSecret and
secretFiles from other Secrets. */}}
{{- define "claimflow.config.unmappedSecrets" -}}
{{- $rest := deepCopy (.Values.secrets | default dict) -}}
{{- range $setting, $_ := .Values.existingSecretKeys | default dict }}
{{- $_ := unset $rest $setting }}
{{- end }}
{{- range $setting, $_ := .Values.secretFiles | default dict }}
{{- $_ := unset $rest $setting }}
{{- end }}
{{- toYaml $rest }}
{{- end -}}

{{/* dict ctx setting: "true" when the pods get the setting's secret file from anywhere. */}}
{{- define "claimflow.config.hasSecret" -}}
{{- $v := .ctx.Values -}}
{{- if or (index ($v.secrets | default dict) .setting) (and $v.existingSecret (index ($v.existingSecretKeys | default dict) .setting)) (index ($v.secretFiles | default dict) .setting) }}true{{ end -}}
{{- end -}}

{{/* The files of the Secret the chart generates (none with an unmapped existingSecret). */}}
{{- define "claimflow.config.generatedSecretData" -}}
{{- if not .Values.existingSecret }}
{{- include "claimflow.config.secretData" (dict "secrets" (include "claimflow.config.unmappedSecrets" . | fromYaml)) }}
{{- else if include "claimflow.config.mappedSecret" . }}
{{- include "claimflow.config.secretData" (dict "secrets" (include "claimflow.config.unmappedSecrets" . | fromYaml)) }}
{{- end }}
{{- end -}}

{{/*
dict name keys: a projected source of Secret `name` with only the keys of `keys` (setting ->
key), each under the file name its setting reads (databaseUrl -> claimflow_database_url).
*/}}
{{- define "claimflow.config.secretItems" -}}
- secret:
    name: {{ .name }}
    items:
      {{- range $setting, $key := .keys }}
      - key: {{ $key | quote }}
        path: {{ printf "claimflow_%s" (snakecase $setting) }}
      {{- end }}
{{- end -}}

{{/* Pod annotations that roll the pods when their settings or generated secrets change. */}}
{{- define "claimflow.config.checksums" -}}
checksum/config: {{ include "claimflow.config.data" . | sha256sum }}
{{- if hasKey .Values "secrets" }}
{{- $generated := include "claimflow.config.generatedSecretData" . }}
{{- if $generated | fromYaml }}
checksum/secret: {{ $generated | sha256sum }}
{{- end }}
{{- end }}
{{- end -}}

{{/* extraEnv: EnvVar objects added to every container (after the chart's own). */}}
{{- define "claimflow.config.extraEnv" -}}
{{- with .Values.extraEnv }}
{{- toYaml . }}
{{- end }}
{{- end -}}
