{{/*
Names, labels and the few shared snippets. Templates stay dumb: the services' settings go into their
config files (config-*.yaml), never into flags.
*/}}

{{- define "expertmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "expertmesh.fullname" -}}
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

{{/* Common labels; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "expertmesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{ include "expertmesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: expertmesh
{{- end -}}

{{- define "expertmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "expertmesh.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The Dockerfile tags its targets <version>-cpu / <version>-cuda; image.tag, when set, is used as it is. */}}
{{- define "expertmesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "%s-%s" .Chart.AppVersion .Values.image.flavor) .Values.image.tag) -}}
{{- end -}}

{{- define "expertmesh.gateway.name" -}}{{ include "expertmesh.fullname" . }}-gateway{{- end -}}
{{- define "expertmesh.orchestrator.name" -}}{{ include "expertmesh.fullname" . }}-orchestrator{{- end -}}
{{- define "expertmesh.runner.name" -}}{{ include "expertmesh.fullname" . }}-batch-runner{{- end -}}
{{- define "expertmesh.redis.name" -}}{{ include "expertmesh.fullname" . }}-redis{{- end -}}
{{- define "expertmesh.apiKeys.secret" -}}{{ default (printf "%s-api-keys" (include "expertmesh.fullname" .)) .Values.apiKeys.existingSecret }}{{- end -}}
{{- define "expertmesh.tls.secret" -}}{{ default (printf "%s-tls" (include "expertmesh.fullname" .)) .Values.tls.existingSecret }}{{- end -}}
{{- define "expertmesh.files.claim" -}}{{ default (printf "%s-batch-files" (include "expertmesh.fullname" .)) .Values.batches.storage.existingClaim }}{{- end -}}
{{/* One engine pool's StatefulSet (and headless Service) name; call with (dict "ctx" $ "pool" $pool). */}}
{{- define "expertmesh.engine.name" -}}{{ include "expertmesh.fullname" .ctx }}-engine-{{ .pool.name }}{{- end -}}

{{- define "expertmesh.orchestrator.address" -}}
{{- printf "%s:%v" (include "expertmesh.orchestrator.name" .) .Values.orchestrator.port -}}
{{- end -}}

{{/* The accelerator of a pool: its own, else the global mode. */}}
{{- define "expertmesh.engine.mode" -}}{{ default .ctx.Values.mode .pool.accelerator }}{{- end -}}

{{/* REDIS_URL for every service: the in-release StatefulSet, an external URL, or a Secret holding one. */}}
{{- define "expertmesh.redis.env" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_URL
  value: {{ printf "redis://%s:6379" (include "expertmesh.redis.name" .) | quote }}
{{- else if .Values.redis.external.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.secretKey }}
{{- else if .Values.redis.external.url }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "expertmesh.fullname" . }}-redis-url
      key: redis-url
{{- else }}
{{- fail "redis.enabled is false: set redis.external.url or redis.external.existingSecret" }}
{{- end }}
{{- end -}}

{{/* Shared env of the Node services. */}}
{{- define "expertmesh.common.env" -}}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otel.endpoint | quote }}
{{- end }}
{{- end -}}

{{/* The R9 drain recipe: a preStop sleep, so endpoints and routers stop sending before SIGTERM. */}}
{{- define "expertmesh.preStop" -}}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .Values.drain.preStopSleepSeconds }}"]
{{- end -}}

{{- define "expertmesh.pod.common" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .Values.drain.terminationGracePeriodSeconds }}
{{- end -}}

{{/* The engine pools, each deeply merged over engine.poolDefaults, as a JSON list (use with fromJsonArray). */}}
{{- define "expertmesh.engine.pools" -}}
{{- $pools := list -}}
{{- range .Values.engine.pools }}
{{- $pools = append $pools (mergeOverwrite (deepCopy $.Values.engine.poolDefaults) (deepCopy .)) -}}
{{- end -}}
{{- toJson $pools -}}
{{- end -}}

{{/* Models every pool serves: the gateways park requests for them while their pools are at zero. */}}
{{- define "expertmesh.models" -}}
{{- $models := list -}}
{{- range .Values.engine.pools }}{{ $models = append $models .model }}{{ end -}}
{{- toJson (uniq $models) -}}
{{- end -}}

{{/* Checks that are not expressible in values.schema.json. */}}
{{- define "expertmesh.validate" -}}
{{- if lt (int .Values.drain.terminationGracePeriodSeconds) (add .Values.drain.preStopSleepSeconds .Values.drain.drainSeconds | int) }}
{{- fail "drain.terminationGracePeriodSeconds must be at least drain.preStopSleepSeconds + drain.drainSeconds" }}
{{- end }}
{{- $names := dict }}
{{- $worldSizes := dict }}
{{- range (include "expertmesh.engine.pools" . | fromJsonArray) }}
{{- if hasKey $names .name }}{{ fail (printf "engine.pools: the pool name %q is used twice" .name) }}{{ end }}
{{- $_ := set $names .name true }}
{{- if and (hasKey $worldSizes .model) (ne (int (get $worldSizes .model)) (int .worldSize)) }}
{{- fail (printf "engine.pools: the pools of model %q must share one worldSize (the orchestrator groups a model's ranks by it)" .model) }}
{{- end }}
{{- $_ := set $worldSizes .model (int .worldSize) }}
{{- if gt (int .autoscaling.minGroups) (int .autoscaling.maxGroups) }}
{{- fail (printf "engine.pools[%s]: autoscaling.minGroups must not exceed maxGroups" .name) }}
{{- end }}
{{- if and (eq (include "expertmesh.engine.mode" (dict "ctx" $ "pool" .)) "gpu") (lt (int .gpusPerRank) 1) }}
{{- fail (printf "engine.pools[%s]: a GPU pool needs gpusPerRank >= 1 (or accelerator: cpu)" .name) }}
{{- end }}
{{- if and (eq .checkpoint.source "pvc") (not .checkpoint.claimName) }}
{{- fail (printf "engine.pools[%s]: checkpoint.source pvc needs checkpoint.claimName" .name) }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled .Values.autoscaling.keda.enabled (not .Values.autoscaling.keda.prometheusAddress) }}
{{- fail "autoscaling.keda.enabled needs autoscaling.keda.prometheusAddress" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (or (not .Values.tls.cert) (not .Values.tls.key)) }}
{{- fail "tls.enabled: set tls.existingSecret, or tls.cert and tls.key" }}
{{- end }}
{{- end -}}
