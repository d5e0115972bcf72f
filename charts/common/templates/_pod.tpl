{{/* dict ctx component: pod-level fields every claimflow pod shares. */}}
{{- define "claimflow.pod.common" -}}
{{- $v := .ctx.Values -}}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- include "claimflow.images.pullSecrets" .ctx }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- range . }}
  {{- $constraint := deepCopy . }}
  {{- if not $constraint.labelSelector }}
  {{- $_ := set $constraint "labelSelector" (dict "matchLabels" (include "claimflow.labels.matchLabels" $ | fromYaml)) }}
  {{- end }}
  - {{- toYaml $constraint | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The chart's container image, pull policy and hardened security context. */}}
{{- define "claimflow.container.common" -}}
image: {{ include "claimflow.images.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{/*
dict ctx sources: the writable /tmp (the root filesystem is read-only) and, when sources
are given, the secret files projected into CLAIMFLOW_SECRETS_DIR.
*/}}
{{- define "claimflow.pod.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .ctx.Values.tmpSizeLimit }}
  {{- with .sources }}
  - name: secrets
    projected:
      defaultMode: 0440
      sources:
        {{- toYaml . | nindent 8 }}
  {{- end }}
{{- end -}}

{{- define "claimflow.container.mounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if .sources }}
  - name: secrets
    mountPath: {{ include "claimflow.config.secretsDir" .ctx }}
    readOnly: true
  {{- end }}
{{- end -}}

{{/* dict ctx port: startup and liveness on /healthz, readiness on /readyz. */}}
{{- define "claimflow.probes" -}}
{{- $probes := .ctx.Values.probes -}}
startupProbe:
  httpGet: {path: /healthz, port: {{ .port }}}
  {{- toYaml $probes.startup | nindent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: {{ .port }}}
  {{- toYaml $probes.liveness | nindent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: {{ .port }}}
  {{- toYaml $probes.readiness | nindent 2 }}
{{- end -}}
