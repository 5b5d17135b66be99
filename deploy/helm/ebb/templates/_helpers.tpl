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

{{/* One built-in scaler sidecar: `--listen <listen>`, then the scaler's own args. */}}
{{- define "ebb.scaler" -}}
{{- $args := default (list) .scaler.args -}}
{{- range $args -}}
{{- if hasPrefix "--listen" . -}}
{{- fail (printf "scalers.%s.args: set the address with scalers.%s.listen, not with --listen in args" $.key $.key) -}}
{{- end -}}
{{- end -}}
- name: {{ .name }}
  image: {{ include "ebb.image" (dict "image" .scaler.image "root" .root) }}
  imagePullPolicy: {{ .scaler.image.pullPolicy }}
  args: {{- toYaml (concat (list "--listen" .scaler.listen) $args) | nindent 4 }}
  {{- with .scaler.resources }}
  resources: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "ebb.containerSecurityContext" . | nindent 2 }}
{{- end -}}

{{/*
The scaler registry (EBB_SCALERS) as TYPE=ADDRESS pairs joined by commas, in type order: each
enabled built-in scaler's `type` at its `listen` address, then `scalerRegistry`, whose entries
win. Empty when there is nothing to register.
*/}}
{{- define "ebb.scalerRegistry" -}}
{{- $registry := dict -}}
{{- range $key, $scaler := .Values.scalers -}}
{{- if $scaler.enabled -}}
{{- if hasKey $registry $scaler.type -}}
{{- fail (printf "scalers.%s.type: %q is already the type of another enabled scaler; give each scaler its own type" $key $scaler.type) -}}
{{- end -}}
{{- $_ := set $registry $scaler.type $scaler.listen -}}
{{- end -}}
{{- end -}}
{{- range $type, $address := .Values.scalerRegistry -}}
{{- $_ := set $registry $type $address -}}
{{- end -}}
{{- $pairs := list -}}
{{- range $type := keys $registry | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $type (index $registry $type)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end }}
