{{- define "bluegreen-app.name" -}}
{{- default .Release.Name .Values.name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "bluegreen-app.idle" -}}
{{- if eq .Values.activeEnvironment "blue" -}}green{{- else -}}blue{{- end -}}
{{- end -}}

{{- define "bluegreen-app.check" -}}
{{- if not (has .Values.activeEnvironment (list "blue" "green")) -}}
{{- fail (printf "activeEnvironment must be blue or green, got %v" .Values.activeEnvironment) -}}
{{- end -}}
{{- end -}}
