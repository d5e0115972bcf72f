{{/* dict ctx component name port: a ClusterIP Service whose port `http` targets the pods' `http`. */}}
{{- define "claimflow.traffic.service" -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "claimflow.metadata" (merge (dict "annotations" .ctx.Values.service.annotations) .) | nindent 2 }}
spec:
  type: ClusterIP
  selector:
    {{- include "claimflow.labels.matchLabels" . | nindent 4 }}
  ports:
    - name: {{ .portName | default "http" }}
      port: {{ .port }}
      targetPort: {{ .portName | default "http" }}
      protocol: TCP
{{- end -}}

{{/* dict ctx component: the Pod -> Service port mapping a Prometheus Operator scrapes. */}}
{{- define "claimflow.traffic.serviceMonitor" -}}
{{- $sm := .ctx.Values.serviceMonitor -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "claimflow.names.fullname" .ctx }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "claimflow.labels.standard" (dict "ctx" .ctx) | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "claimflow.labels.matchLabels" (dict "ctx" .ctx) | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ .ctx.Release.Namespace }}]
  endpoints:
    - port: {{ .portName | default "http" }}
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
{{- end -}}

{{/*
dict ctx backends: an Ingress routing each {path, service, port} of backends (prefix match)
on .Values.ingress.host; HTTPS only unless .Values.ingress.allowInsecure.
*/}}
{{- define "claimflow.traffic.ingress" -}}
{{- $ing := .ctx.Values.ingress -}}
{{- if and (not $ing.tls) (not $ing.allowInsecure) }}
{{- fail "ingress.tls is empty: claims carry PHI, so the Ingress serves HTTPS only. Add ingress.tls ([{secretName, hosts}]), or set ingress.allowInsecure: true where TLS ends in front of the Ingress" }}
{{- end }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  {{- include "claimflow.metadata" (dict "ctx" .ctx "name" (include "claimflow.names.fullname" .ctx) "annotations" $ing.annotations) | nindent 2 }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ing.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    - host: {{ $ing.host | quote }}
      http:
        paths:
          {{- range .backends }}
          - path: {{ .path }}
            pathType: Prefix
            backend:
              service:
                name: {{ .service }}
                port:
                  number: {{ .port }}
          {{- end }}
{{- end -}}

{{/* dict ctx backends: the Gateway API equivalent of the Ingress above; each parentRef must
name an HTTPS listener (sectionName) unless .Values.httpRoute.allowInsecure. */}}
{{- define "claimflow.traffic.httpRoute" -}}
{{- $route := .ctx.Values.httpRoute -}}
{{- if not $route.allowInsecure }}
{{- range $route.parentRefs }}
{{- if not .sectionName }}
{{- fail (printf "httpRoute.parentRefs: %s has no sectionName; claims carry PHI, so the route attaches only to a Gateway's HTTPS listener, named by sectionName. Name it, or set httpRoute.allowInsecure: true" .name) }}
{{- end }}
{{- end }}
{{- end }}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  {{- include "claimflow.metadata" (dict "ctx" .ctx "name" (include "claimflow.names.fullname" .ctx) "annotations" $route.annotations) | nindent 2 }}
spec:
  parentRefs:
    {{- toYaml $route.parentRefs | nindent 4 }}
  {{- with $route.hostnames }}
  hostnames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range .backends }}
    - matches:
        - path:
            type: PathPrefix
            value: {{ .path }}
      backendRefs:
        - name: {{ .service }}
          port: {{ .port }}
    {{- end }}
{{- end -}}

{{/*
dict ctx component rules: a NetworkPolicy for one component's pods. `rules` are ingress
rules {from: [peers], port}; a rule whose peer list is empty is left out (an empty `from`
would admit everyone). Egress: every entry of .Values.networkPolicy.egress, each
{ports, to}; an empty `to` allows those ports to any destination.
*/}}
{{- define "claimflow.traffic.networkPolicy" -}}
{{- $np := .ctx.Values.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "claimflow.metadata" . | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "claimflow.labels.matchLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  {{- $rules := list }}
  {{- range .rules }}{{ if .from }}{{ $rules = append $rules . }}{{ end }}{{ end }}
  ingress:
    {{- range $rules }}
    - from:
        {{- toYaml .from | nindent 8 }}
      ports:
        - port: {{ .port }}
          protocol: TCP
    {{- else }} []
    {{- end }}
  egress:
    {{- range $name, $rule := $np.egress }}
    - ports:
        {{- toYaml $rule.ports | nindent 8 }}
      {{- with $rule.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
{{- end -}}

{{/* dict ctx component: the peer that is this release's `helm test` Pod. */}}
{{- define "claimflow.traffic.testPeer" -}}
- podSelector:
    matchLabels:
      {{- include "claimflow.labels.matchLabels" (dict "ctx" .ctx "component" "test") | nindent 6 }}
{{- end -}}
