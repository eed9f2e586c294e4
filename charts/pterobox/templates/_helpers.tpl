{{/* The release's base name. */}}
{{- define "pterobox.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pterobox.selectorLabels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pterobox.labels" -}}
{{ include "pterobox.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "pterobox.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "pterobox.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{- define "pterobox.webhookService" -}}
{{ include "pterobox.fullname" . }}-webhook
{{- end -}}

{{- define "pterobox.webhookSecret" -}}
{{ include "pterobox.fullname" . }}-webhook-tls
{{- end -}}

{{/*
The namespaces besides the release's whose Secrets the operator may read, as a JSON list (none
when secretNamespaces has "*": a ClusterRole rule covers every namespace).
*/}}
{{- define "pterobox.extraSecretNamespaces" -}}
{{- if has "*" .Values.secretNamespaces -}}
[]
{{- else -}}
{{- without (uniq .Values.secretNamespaces) .Release.Namespace | toJson -}}
{{- end -}}
{{- end }}

{{/*
The operator's --secret-namespaces: the release's namespace and secretNamespaces, or "*".
*/}}
{{- define "pterobox.secretNamespaces" -}}
{{- if has "*" .Values.secretNamespaces -}}
*
{{- else -}}
{{- prepend (without (uniq .Values.secretNamespaces) .Release.Namespace) .Release.Namespace | join "," -}}
{{- end -}}
{{- end }}
