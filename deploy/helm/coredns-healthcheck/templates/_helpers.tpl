{{/*
Labels of every object: the Kustomize base's two (app.kubernetes.io/name and part-of, which the
ServiceMonitor selects Services by) and Helm's.
*/}}
{{- define "coredns-healthcheck.labels" -}}
app.kubernetes.io/name: coredns-healthcheck
app.kubernetes.io/part-of: coredns-healthcheck
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/*
The namespace of every namespaced object: the release's, which must be the one CoreDNS runs in
(the agents and the controller look for CoreDNS, the Lease and each other there). `default`
cannot be it: the Roles in `default` (the kubernetes Service, Events on Nodes) would collide.
*/}}
{{- define "coredns-healthcheck.namespace" -}}
{{- if eq .Release.Namespace "default" -}}
{{- fail "install coredns-healthcheck into the namespace CoreDNS runs in (usually kube-system: helm install --namespace kube-system), not default" -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end }}

{{/*
HC_NAMESPACE for both containers when the release's namespace is not the command's default
(kube-system).
*/}}
{{- define "coredns-healthcheck.namespaceEnv" -}}
{{- if ne (include "coredns-healthcheck.namespace" .) "kube-system" -}}
- name: HC_NAMESPACE
  value: {{ include "coredns-healthcheck.namespace" . | quote }}
{{- end -}}
{{- end }}

{{- define "coredns-healthcheck.image" -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
The remediation mode: off, dry-run or on. YAML 1.1 reads an unquoted `on`/`off` as a boolean:
accepted as what it means.
*/}}
{{- define "coredns-healthcheck.remediation" -}}
{{- $mode := .Values.remediation -}}
{{- if kindIs "bool" $mode -}}
{{- $mode = ternary "on" "off" $mode -}}
{{- end -}}
{{- if not (has (toString $mode) (list "off" "dry-run" "on")) -}}
{{- fail (printf "remediation must be off, dry-run or on, not %v" $mode) -}}
{{- end -}}
{{- $mode -}}
{{- end }}
