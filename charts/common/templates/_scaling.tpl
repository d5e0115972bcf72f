{{/* dict ctx component: an autoscaling/v2 HPA for the component's Deployment. */}}
{{- define "claimflow.scaling.hpa" -}}
{{- $a := (index .ctx.Values .component).autoscaling -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  {{- include "claimflow.metadata" . | nindent 2 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "claimflow.names.component" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- with $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
{{- end -}}

{{/* dict ctx component: a PodDisruptionBudget for the component's pods. */}}
{{- define "claimflow.scaling.pdb" -}}
{{- $p := (index .ctx.Values .component).pdb -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "claimflow.metadata" . | nindent 2 }}
spec:
  {{- if $p.maxUnavailable }}
  maxUnavailable: {{ $p.maxUnavailable }}
  {{- else }}
  minAvailable: {{ $p.minAvailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "claimflow.labels.matchLabels" . | nindent 6 }}
{{- end -}}

{{/* dict ctx automount: the chart's ServiceAccount. */}}
{{- define "claimflow.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "claimflow.metadata" (dict "ctx" .ctx "name" (include "claimflow.names.serviceAccount" .ctx) "annotations" .ctx.Values.serviceAccount.annotations) | nindent 2 }}
automountServiceAccountToken: {{ .automount }}
{{- end -}}
