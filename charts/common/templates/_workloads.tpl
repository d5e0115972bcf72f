{{/*
The workloads of a claimflow service chart. A service chart's values carry `api`, and
optionally `worker` and `migrations`, each with its `command`; these helpers turn them into
Deployments, the migrations hook Job and the `helm test` Pod.
*/}}

{{/*
The projected volume's sources. existingSecretKeys (setting -> key, e.g. databaseUrl: uri for
a CloudNativePG `<cluster>-app` Secret) takes those settings from existingSecret's keys, and
secretFiles (setting -> {secret, key}, e.g. kafkaSaslPassword from a Strimzi KafkaUser's
Secret) from other Secrets, renamed to the files the settings read; the other settings then
come from the generated Secret.
*/}}
{{- define "claimflow.app.secretSources" -}}
{{- if include "claimflow.config.mappedSecret" . }}
{{- include "claimflow.config.secretItems" (dict "name" .Values.existingSecret "keys" .Values.existingSecretKeys) }}
{{- else if .Values.existingSecret }}
- secret:
    name: {{ .Values.existingSecret }}
{{- end }}
{{- range $setting, $file := .Values.secretFiles | default dict }}
{{ include "claimflow.config.secretItems" (dict "name" $file.secret "keys" (dict $setting $file.key)) }}
{{- end }}
{{- if include "claimflow.config.generatedSecretData" . | fromYaml }}
- secret:
    name: {{ include "claimflow.config.generatedSecretName" . }}
{{- end }}
{{- end -}}

{{/* dict ctx component: the API (component api) or the Kafka worker (component worker). */}}
{{- define "claimflow.app.deployment" -}}
{{- $ctx := .ctx -}}
{{- $c := index $ctx.Values .component -}}
{{- $sources := include "claimflow.app.secretSources" $ctx | fromYamlArray -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "claimflow.metadata" . | nindent 2 }}
spec:
  {{- if not $c.autoscaling.enabled }}
  replicas: {{ $c.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  minReadySeconds: {{ $c.minReadySeconds | default 0 }}
  selector:
    matchLabels:
      {{- include "claimflow.labels.matchLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "claimflow.labels.standard" . | nindent 8 }}
        {{- with $ctx.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "claimflow.config.checksums" $ctx | nindent 8 }}
        {{- include "claimflow.prometheus.annotations" (dict "ctx" $ctx "port" $c.port) | nindent 8 }}
        {{- with $ctx.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "claimflow.names.serviceAccount" $ctx }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $ctx.Values.terminationGracePeriodSeconds }}
      {{- include "claimflow.pod.common" . | nindent 6 }}
      containers:
        - name: {{ .component }}
          {{- include "claimflow.container.common" $ctx | nindent 10 }}
          command:
            {{- toYaml $c.command | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ $c.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "claimflow.names.fullname" $ctx }}
          {{- with include "claimflow.config.extraEnv" $ctx }}
          env:
            {{- . | nindent 12 }}
          {{- end }}
          {{- include "claimflow.probes" (dict "ctx" $ctx "port" "http") | nindent 10 }}
          {{- if and (eq .component "api") $ctx.Values.preStopSleepSeconds }}
          {{- if ge (int $ctx.Values.preStopSleepSeconds) (int $ctx.Values.terminationGracePeriodSeconds) }}
          {{- fail "preStopSleepSeconds must be shorter than terminationGracePeriodSeconds: the sleep counts against it, and the requests in flight need the rest" }}
          {{- end }}
          lifecycle:
            # exec, not the sleep action: that needs Kubernetes 1.30; the images have sleep.
            preStop:
              exec:
                command: [sleep, {{ $ctx.Values.preStopSleepSeconds | quote }}]
          {{- end }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          {{- include "claimflow.container.mounts" (dict "ctx" $ctx "sources" $sources) | nindent 10 }}
      {{- include "claimflow.pod.volumes" (dict "ctx" $ctx "sources" $sources) | nindent 6 }}
{{- end -}}

{{/*
The schema migrations as a pre-install/pre-upgrade hook Job: it runs before any new pod, on
the first install and on every upgrade (the migrations are safe to run concurrently and
idempotent). Its settings are inline because the ConfigMap does not exist yet on install
(extraEnv replaces a setting of the same name, as it does over envFrom in the Deployments);
it runs under the namespace's default ServiceAccount, without a token, for the same reason.
*/}}
{{- define "claimflow.app.migrations" -}}
{{- $v := .Values -}}
{{- $m := $v.migrations -}}
{{- $sources := include "claimflow.app.secretSources" . | fromYamlArray -}}
{{- if and $m.existingSecret $m.existingSecretKeys }}
{{- $sources = concat $sources (include "claimflow.config.secretItems" (dict "name" $m.existingSecret "keys" $m.existingSecretKeys) | fromYamlArray) -}}
{{- else if or $m.existingSecret $m.secrets }}
{{- $sources = append $sources (dict "secret" (dict "name" (include "claimflow.app.migrationsSecretName" .))) -}}
{{- end }}
{{- $ctx := dict "ctx" . "component" "migrate" -}}
apiVersion: batch/v1
kind: Job
metadata:
  {{- include "claimflow.metadata" (merge (dict "annotations" (include "claimflow.hooks.preInstall" "0" | fromYaml)) $ctx) | nindent 2 }}
spec:
  backoffLimit: {{ $m.backoffLimit }}
  activeDeadlineSeconds: {{ $m.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ $m.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "claimflow.labels.standard" $ctx | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- include "claimflow.pod.common" $ctx | nindent 6 }}
      containers:
        - name: migrate
          {{- include "claimflow.container.common" . | nindent 10 }}
          command:
            {{- toYaml $m.command | nindent 12 }}
          {{- $overridden := list }}
          {{- range $v.extraEnv }}{{ $overridden = append $overridden .name }}{{ end }}
          env:
            {{- range $name, $value := include "claimflow.config.data" . | fromYaml }}
            {{- if not (has $name $overridden) }}
            - name: {{ $name }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- end }}
            {{- with include "claimflow.config.extraEnv" . }}
            {{- . | nindent 12 }}
            {{- end }}
          resources:
            {{- toYaml $m.resources | nindent 12 }}
          {{- include "claimflow.container.mounts" (dict "ctx" . "sources" $sources) | nindent 10 }}
      {{- include "claimflow.pod.volumes" (dict "ctx" . "sources" $sources) | nindent 6 }}
{{- end -}}

{{- define "claimflow.app.migrationsSecretName" -}}
{{- .Values.migrations.existingSecret | default (printf "%s-migrate-credentials" (include "claimflow.names.fullname" .)) -}}
{{- end -}}

{{/*
The generated Secrets: none when existingSecret names the operator's own, only the settings
existingSecretKeys and secretFiles leave out when they map some.
*/}}
{{- define "claimflow.app.secrets" -}}
{{- $elsewhere := merge (dict) (.Values.secretFiles | default dict) (.Values.existingSecretKeys | default dict) }}
{{- if not .Values.existingSecret }}
{{- $required := ternary (list) (list "databaseUrl") (hasKey (.Values.secretFiles | default dict) "databaseUrl") }}
{{- include "claimflow.config.secret" (dict "ctx" . "name" (include "claimflow.config.secretName" .) "secrets" (include "claimflow.config.unmappedSecrets" . | fromYaml) "required" $required "path" "secrets" "existingPath" "existingSecret") }}
{{- else if include "claimflow.config.mappedSecret" . }}
{{- $rest := include "claimflow.config.unmappedSecrets" . | fromYaml }}
{{- $required := ternary (list) (list "databaseUrl") (hasKey $elsewhere "databaseUrl") }}
{{- /* Rendered (and so checked) when it has files, or when the database URL is missing. */}}
{{- if or $required (include "claimflow.config.generatedSecretData" . | fromYaml) }}
{{- include "claimflow.config.secret" (dict "ctx" . "name" (include "claimflow.config.generatedSecretName" .) "secrets" $rest "required" $required "path" "secrets" "existingPath" "existingSecretKeys") }}
{{- end }}
{{- end }}
{{- $m := .Values.migrations | default dict }}
{{- if and $m.enabled $m.secrets (not $m.existingSecret) }}
---
{{ include "claimflow.config.secret" (dict "ctx" . "name" (include "claimflow.app.migrationsSecretName" .) "secrets" $m.secrets "required" (keys $m.secrets) "path" "migrations.secrets" "existingPath" "migrations.existingSecret") }}
{{- end }}
{{- end -}}

{{/*
dict ctx url targetPort targetComponent: the `helm test` Pod. The service images have no curl; their Python does the
GET and exits non-zero on anything but 200.
*/}}
{{- define "claimflow.testPod" -}}
{{- $v := .ctx.Values -}}
{{- $ctx := dict "ctx" .ctx "component" "test" -}}
{{- $hook := dict "helm.sh/hook" "test" "helm.sh/hook-delete-policy" "before-hook-creation,hook-succeeded" -}}
{{- /* The test's own NetworkPolicy, created just before it: DNS and the port it calls. */}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "claimflow.metadata" (merge (dict "annotations" (merge (dict "helm.sh/hook-weight" "-1") $hook)) $ctx) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "claimflow.labels.matchLabels" $ctx | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress: []
  egress:
    - ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
    - ports:
        - {port: {{ .targetPort }}, protocol: TCP}
      to:
        - podSelector:
            matchLabels:
              {{- include "claimflow.labels.matchLabels" (dict "ctx" .ctx "component" .targetComponent) | nindent 14 }}
---
apiVersion: v1
kind: Pod
metadata:
  {{- $skips := dict
    "checkov.io/skip1" "CKV_K8S_8=a one-shot helm test Pod has nothing to keep alive"
    "checkov.io/skip2" "CKV_K8S_9=a one-shot helm test Pod receives no traffic"
  }}
  {{- include "claimflow.metadata" (merge (dict "annotations" (merge (dict) $hook $skips)) $ctx) | nindent 2 }}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- include "claimflow.pod.common" $ctx | nindent 2 }}
  containers:
    - name: get
      {{- include "claimflow.container.common" .ctx | nindent 6 }}
      command:
        - python
        - -c
        - |
          import sys, urllib.request
          with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
              sys.exit(0 if response.status == 200 else 1)
        - {{ .url }}
      resources:
        {{- toYaml $v.testResources | nindent 8 }}
      {{- include "claimflow.container.mounts" $ctx | nindent 6 }}
  {{- include "claimflow.pod.volumes" $ctx | nindent 2 }}
{{- end -}}

{{/* `helm test` of a service chart: the API's /readyz through its Service. */}}
{{- define "claimflow.app.testPod" -}}
{{- $url := printf "http://%s:%v/readyz" (include "claimflow.names.fullname" .) .Values.service.port }}
{{- include "claimflow.testPod" (dict "ctx" . "url" $url "targetPort" .Values.api.port "targetComponent" "api") }}
{{- end -}}

{{/*
dict ctx port: the annotations Prometheus' pod discovery reads (the k8s/ stack uses them);
the ServiceMonitor serves the Prometheus Operator instead.
*/}}
{{- define "claimflow.prometheus.annotations" -}}
{{- if .ctx.Values.prometheusScrape -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}
