{{/* The base name of every object: "<release>-controller" ("ebb-controller" for release "ebb"). */}}
{{- define "ebb.fullname" -}}
{{- printf "%s-controller" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object, and the pod selector: the same as the kustomize base. */}}
{{- define "ebb.labels" -}}
app.kubernetes.io/name: {{ include "ebb.fullname" . }}
{{- end -}}

{{/* An image reference from {repository, tag}; an empty tag is the chart's appVersion. */}}
{{- define "ebb.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* The hardened container security context every container gets. */}}
{{- define "ebb.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{/* One built-in scaler sidecar. */}}
{{- define "ebb.scaler" -}}
- name: {{ .name }}
  image: {{ include "ebb.image" (dict "image" .scaler.image "root" .root) }}
  imagePullPolicy: {{ .scaler.image.pullPolicy }}
  args: {{- toYaml .scaler.args | nindent 4 }}
  {{- with .scaler.resources }}
  resources: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "ebb.containerSecurityContext" . | nindent 2 }}
{{- end -}}

{{/*
The scaler registry as TYPE=ADDRESS pairs joined by commas, in key order (EBB_SCALERS).
*/}}
{{- define "ebb.scalerRegistry" -}}
{{- $pairs := list -}}
{{- range $type := keys . | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $type (index $ $type)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end }}
