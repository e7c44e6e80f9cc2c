{{/* Names ----------------------------------------------------------------------------------------- */}}

{{/* The chart name, or nameOverride. */}}
{{- define "kubedag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects: fullnameOverride, <release> if it contains the chart name,
else <release>-<chart name>. At most 52 characters, so that suffixes (-postgresql, -database) fit in 63. */}}
{{- define "kubedag.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "kubedag.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The controller's ServiceAccount. */}}
{{- define "kubedag.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubedag.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubedag.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "kubedag.fullname" .) }}
{{- end }}

{{/* Labels ---------------------------------------------------------------------------------------- */}}

{{- define "kubedag.labels" -}}
helm.sh/chart: {{ include "kubedag.chart" . }}
app.kubernetes.io/name: {{ include "kubedag.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubedag
{{- end }}

{{/* Selector labels of a component: include "kubedag.selectorLabels" (list . "controller"). */}}
{{- define "kubedag.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "kubedag.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Images ---------------------------------------------------------------------------------------- */}}

{{- define "kubedag.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{- define "kubedag.postgresql.image" -}}
{{- printf "%s:%s" .Values.postgresql.image.repository (.Values.postgresql.image.tag | toString) }}
{{- end }}

{{/* Values checks --------------------------------------------------------------------------------- */}}

{{/* Fails rendering unless exactly one database source is given. Included by every template that
depends on it, so `helm template` and `helm install` stop before anything is created. */}}
{{- define "kubedag.validateValues" -}}
{{- $sources := list }}
{{- if .Values.postgresql.enabled }}{{ $sources = append $sources "postgresql.enabled" }}{{ end }}
{{- if .Values.database.url }}{{ $sources = append $sources "database.url" }}{{ end }}
{{- if .Values.database.existingSecret }}{{ $sources = append $sources "database.existingSecret" }}{{ end }}
{{- if eq (len $sources) 0 }}
{{- fail "kubedag needs a PostgreSQL metadata database: set one of postgresql.enabled=true (install one with the chart), database.url=postgresql://USER:PASSWORD@HOST:5432/DB, or database.existingSecret=NAME (a Secret holding the URL under database.existingSecretKey, default \"url\")" }}
{{- end }}
{{- if gt (len $sources) 1 }}
{{- fail (printf "kubedag: set only one database source, got %s" (join ", " $sources)) }}
{{- end }}
{{- if and .Values.database.url (not (regexMatch "^postgres(ql)?(\\+psycopg)?://" .Values.database.url)) }}
{{- fail "kubedag: database.url must be a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:5432/DB)" }}
{{- end }}
{{- if and .Values.database.existingSecret (not .Values.database.existingSecretKey) }}
{{- fail "kubedag: database.existingSecretKey must name the key of the URL in database.existingSecret" }}
{{- end }}
{{- if and (gt (int .Values.controller.replicas) 1) (not .Values.controller.leaderElection.enabled) }}
{{- fail "kubedag: controller.replicas > 1 needs controller.leaderElection.enabled=true (replicas would all act at once)" }}
{{- end }}
{{- if lt (int .Values.controller.replicas) 1 }}
{{- fail "kubedag: controller.replicas must be at least 1" }}
{{- end }}
{{- range .Values.watchNamespaces }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (toString .)) }}
{{- fail (printf "kubedag: watchNamespaces: %q is not a namespace name" (toString .)) }}
{{- end }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.controller.livenessPort) }}
{{- fail (printf "kubedag: metrics.port and controller.livenessPort must differ (both are %d)" (int .Values.metrics.port)) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "kubedag: metrics.serviceMonitor.enabled needs metrics.service.enabled (the ServiceMonitor scrapes that Service)" }}
{{- end }}
{{- end }}

{{/* The watched namespaces, sorted, without duplicates; empty means cluster-wide. */}}
{{- define "kubedag.watchNamespaces" -}}
{{- .Values.watchNamespaces | uniq | sortAlpha | join "," }}
{{- end }}

{{/* Database wiring ------------------------------------------------------------------------------- */}}

{{/* The Secret and key holding KUBEDAG_DATABASE_URL (unused with the bundled PostgreSQL). */}}
{{- define "kubedag.database.secretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "kubedag.fullname" .) }}
{{- end }}
{{- end }}

{{- define "kubedag.database.secretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}

{{/* KUBEDAG_DATABASE_URL (and PGPASSWORD with the bundled PostgreSQL): the env entries of every process that
reads the metadata database (the controller, the API server). */}}
{{- define "kubedag.databaseEnv" -}}
{{- $pg := include "kubedag.postgresql.fullname" . }}
{{- if .Values.postgresql.enabled }}
# The bundled PostgreSQL: the password comes from its Secret through libpq's PGPASSWORD, so the
# URL holds none (and needs no escaping).
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $pg }}
      key: password
- name: KUBEDAG_DATABASE_URL
  value: {{ printf "postgresql://%s@%s.%s.svc:5432/%s" .Values.postgresql.username $pg .Release.Namespace .Values.postgresql.database | quote }}
{{- else }}
- name: KUBEDAG_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "kubedag.database.secretName" . }}
      key: {{ include "kubedag.database.secretKey" . }}
{{- end }}
{{- end }}

{{/* The bundled PostgreSQL's password: postgresql.password if given, else the one already stored in the
release's Secret (so upgrades keep it), else a new random one. */}}
{{- define "kubedag.postgresql.password" -}}
{{- if .Values.postgresql.password }}
{{- .Values.postgresql.password }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "kubedag.postgresql.fullname" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "password") }}
{{- index $existing.data "password" | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/* RBAC ------------------------------------------------------------------------------------------ */}}

{{/* What the controller does in a watched namespace (a Role there) or everywhere (a ClusterRole). */}}
{{- define "kubedag.rbac.workloadRules" -}}
{{- /* Exactly what the controller calls (measured with the API server's audit log in tests/controlplane):
watches of its four kinds; DAGRuns created, read, deleted (history limit) and patched (spec.actions: a
trigger's resetDagRun, a backfill's resetDagRuns, a new run's default spec.logicalDate); status written by PATCH (a merge patch
without resourceVersion: DAGs, Pools, DAGRuns, Backfills; a DAGRun patch invalid against the stored status: the run is read again); pods created, read
(a try's pod missing from the watch cache), deleted and their logs archived; ConfigMaps and Secrets read
for variables and connections; core Events posted; a DAG read when a run's DAG is not in the watch cache
(right after a restart, or deleted: its runs end). */}}
- apiGroups: [kubedag.io]
  resources: [dags]
  verbs: [get, list, watch]
- apiGroups: [kubedag.io]
  resources: [pools, backfills]
  verbs: [list, watch]
- apiGroups: [kubedag.io]
  resources: [dagruns]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [kubedag.io]
  resources: [dags/status, pools/status, dagruns/status, backfills/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* Leader election (kubedag.k8s.leader): the Lease is read, created once, and renewed/released by PUT. */}}
{{- define "kubedag.rbac.leaderElectionRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end }}

{{/* Cluster-scoped reads kopf needs: it watches CRDs in both modes, and namespaces only when given a list of
them (cluster-wide it watches every object directly; measured in tests/controlplane). */}}
{{- define "kubedag.rbac.clusterReadRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if not (empty .Values.watchNamespaces) }}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end }}

{{/* The REST API ----------------------------------------------------------------------------------- */}}

{{- define "kubedag.api.fullname" -}}
{{- printf "%s-api" (include "kubedag.fullname" .) }}
{{- end }}

{{- define "kubedag.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "kubedag.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The API's home namespace: api.namespace, else the first watched namespace, else the release's. */}}
{{- define "kubedag.api.namespace" -}}
{{- if .Values.api.namespace }}
{{- .Values.api.namespace }}
{{- else if .Values.watchNamespaces }}
{{- first (.Values.watchNamespaces | uniq | sortAlpha) }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/* Every namespace the API serves (home first), as a list. */}}
{{- define "kubedag.api.namespaces" -}}
{{- $home := include "kubedag.api.namespace" . }}
{{- $others := without (.Values.api.extraNamespaces | uniq | sortAlpha) $home }}
{{- prepend $others $home | toJson }}
{{- end }}

{{/* What the API server calls in a namespace it serves, no more: reads of the four kinds, the operations'
writes (trigger = create dagruns; clear, mark and a run's state = patch dagruns; delete dagruns; pause = patch
dags; backfills created and patched for pause/cancel), try logs, and (readDagSources) the DAGs' ConfigMaps and
Secrets to mask live logs. */}}
{{- define "kubedag.rbac.apiRules" -}}
- apiGroups: [kubedag.io]
  resources: [dags]
  verbs: [get, list, patch]
- apiGroups: [kubedag.io]
  resources: [dagruns]
  verbs: [get, list, create, patch, delete]
- apiGroups: [kubedag.io]
  resources: [backfills]
  verbs: [get, list, create, patch]
- apiGroups: [kubedag.io]
  resources: [pools]
  verbs: [get, list]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
{{- if .Values.api.readDagSources }}
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [get]
{{- end }}
{{- end }}
