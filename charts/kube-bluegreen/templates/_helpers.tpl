{{/* Chart name. */}}
{{- define "kube-bluegreen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name prefix of every resource. The webhook configurations, ClusterRole and policy are
cluster-scoped and take this name too.
*/}}
{{- define "kube-bluegreen.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kube-bluegreen.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kube-bluegreen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-bluegreen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kube-bluegreen.labels" -}}
helm.sh/chart: {{ include "kube-bluegreen.chart" . }}
{{ include "kube-bluegreen.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-bluegreen
{{- end }}

{{- define "kube-bluegreen.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-bluegreen.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of both webhook configurations (Mutating and Validating); the webhook patches their caBundle in selfSigned mode. */}}
{{- define "kube-bluegreen.webhookConfigName" -}}
{{- include "kube-bluegreen.fullname" . }}
{{- end }}

{{- define "kube-bluegreen.policyName" -}}
{{- printf "%s-slot-labels" (include "kube-bluegreen.fullname" .) }}
{{- end }}

{{- define "kube-bluegreen.leaseName" -}}
{{- default (include "kube-bluegreen.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The Secret holding the key that seals pending-change records (created by the first replica). */}}
{{- define "kube-bluegreen.recordKeySecretName" -}}
{{- printf "%s-record-key" (include "kube-bluegreen.fullname" .) }}
{{- end }}

{{/* The Secret holding the serving certificate, in every mode. */}}
{{- define "kube-bluegreen.tlsSecretName" -}}
{{- $mode := .Values.tls.mode }}
{{- if eq $mode "selfSigned" }}
{{- default (printf "%s-tls" (include "kube-bluegreen.fullname" .)) .Values.tls.selfSigned.secretName }}
{{- else if eq $mode "certManager" }}
{{- printf "%s-tls" (include "kube-bluegreen.fullname" .) }}
{{- else if eq $mode "existingSecret" }}
{{- required "tls.existingSecret.name is required when tls.mode is existingSecret" .Values.tls.existingSecret.name }}
{{- else }}
{{- fail (printf "tls.mode must be selfSigned, certManager or existingSecret (got %q)" $mode) }}
{{- end }}
{{- end }}

{{/* The serving cert's DNS names: the Service's in-cluster names. */}}
{{- define "kube-bluegreen.dnsNames" -}}
{{- $svc := include "kube-bluegreen.fullname" . }}
{{- list (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.%s" $svc .Release.Namespace .Values.clusterDomain) | toJson }}
{{- end }}

{{- define "kube-bluegreen.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespaces the webhooks never see: kube-system, the release namespace, and any listed. */}}
{{- define "kube-bluegreen.excludedNamespaces" -}}
{{- concat (list "kube-system" .Release.Namespace) .Values.webhooks.excludeNamespaces | uniq | toJson }}
{{- end }}

{{/* Where the mounted certificate lives (certManager and existingSecret modes). */}}
{{- define "kube-bluegreen.certDir" -}}
/etc/kube-bluegreen/tls
{{- end }}
