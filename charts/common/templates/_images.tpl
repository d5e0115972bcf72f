{{/*
The container image: [registry/]repository[:tag][@digest]. global.imageRegistry and
global.imageTag (set once in the umbrella) win over the chart's own registry and tag.
*/}}
{{- define "claimflow.images.image" -}}
{{- $global := .Values.global | default dict -}}
{{- $image := .Values.image -}}
{{- $registry := $global.imageRegistry | default $image.registry -}}
{{- $tag := $global.imageTag | default $image.tag | default .Chart.AppVersion | toString -}}
{{- $ref := $image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $ref }}{{ end -}}
{{- if $tag }}{{ $ref = printf "%s:%s" $ref $tag }}{{ end -}}
{{- if $image.digest }}{{ $ref = printf "%s@%s" $ref $image.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{- define "claimflow.images.pullSecrets" -}}
{{- $global := .Values.global | default dict -}}
{{- $secrets := concat ($global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) | uniq -}}
{{- with $secrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
