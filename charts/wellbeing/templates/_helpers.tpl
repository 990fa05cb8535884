{{/* Release-wide name, truncated to 63 characters (the DNS label limit of most object names). */}}
{{- define "wellbeing.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* app.kubernetes.io/name. Plugin NetworkPolicies admit the assistant and operator by this label, so it is
the chart name and not configurable. */}}
{{- define "wellbeing.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{- define "wellbeing.labels" -}}
app.kubernetes.io/name: {{ include "wellbeing.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wellbeing
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "operator"). */}}
{{- define "wellbeing.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wellbeing.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wellbeing.componentLabels" -}}
{{ include "wellbeing.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wellbeing.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "wellbeing.pluginImage" -}}
{{ .Values.plugins.image.repository }}:{{ .Values.plugins.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "wellbeing.operator.fullname" -}}
{{- printf "%s-operator" (include "wellbeing.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wellbeing.assistant.fullname" -}}
{{- printf "%s-assistant" (include "wellbeing.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wellbeing.checkin.fullname" -}}
{{- printf "%s-checkin" (include "wellbeing.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wellbeing.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "wellbeing.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wellbeing.assistant.serviceAccountName" -}}
{{- if .Values.assistant.serviceAccount.create -}}
{{- default (include "wellbeing.assistant.fullname" .) .Values.assistant.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.assistant.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wellbeing.checkin.serviceAccountName" -}}
{{- default (include "wellbeing.checkin.fullname" .) .Values.checkin.serviceAccount.name -}}
{{- end -}}

{{/* Kubernetes Secret holding the assistant's credentials (keys slack-signing-secret,
slack-bot-token, llm-api-key). The chart never creates it: values would land in Helm's release
record. */}}
{{- define "wellbeing.assistant.secretName" -}}
{{- default (include "wellbeing.assistant.fullname" .) .Values.assistant.credentials.secretName -}}
{{- end -}}

{{/* In-cluster URL of the assistant's internal port, given to the operator for check-in Jobs
(/internal/checkins) and plugins (/internal/llm/v1). */}}
{{- define "wellbeing.assistant.url" -}}
{{- printf "http://%s.%s.svc:%d" (include "wellbeing.assistant.fullname" .) .Release.Namespace (int .Values.assistant.service.internalPort) -}}
{{- end -}}

{{/* true when the operator watches every namespace (watchNamespaces: ["*"]). */}}
{{- define "wellbeing.clusterWide" -}}
{{- if has "*" .Values.watchNamespaces -}}true{{- end -}}
{{- end -}}

{{/* Namespaces that get a Role for the operator: the release namespace plus the listed ones. */}}
{{- define "wellbeing.operatorNamespaces" -}}
{{- $namespaces := list .Release.Namespace -}}
{{- range .Values.watchNamespaces -}}
{{- if ne . "*" -}}{{- $namespaces = append $namespaces . -}}{{- end -}}
{{- end -}}
{{- $namespaces | uniq | toJson -}}
{{- end -}}

{{/* Restricted Pod Security profile for every container the chart runs. */}}
{{- define "wellbeing.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "wellbeing.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "wellbeing.validate" -}}
{{- if and (eq .Values.secretStore.type "gcp") (not .Values.secretStore.gcp.projectId) -}}
{{- fail "secretStore.gcp.projectId is required when secretStore.type is gcp" -}}
{{- end -}}
{{- end -}}

{{/* assistant.people as WELLBEING_PEOPLE: name=identity,identity;name=identity */}}
{{- define "wellbeing.people" -}}
{{- $entries := list -}}
{{- range . -}}
{{- $entries = append $entries (printf "%s=%s" .name (join "," .identities)) -}}
{{- end -}}
{{- join ";" $entries -}}
{{- end }}
