{{/* The release's object names: the release name, with "-tollgate" unless it already contains "tollgate". */}}
{{- define "tollgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object has; "component" is set by the includer. */}}
{{- define "tollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tollgate
app.kubernetes.io/version: {{ include "tollgate.tag" . | quote }}
{{- end -}}

{{/* The selector labels of tollgate's pods of one component: (list . "proxy"). */}}
{{- define "tollgate.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The selector labels of the bundled Consul's pods. */}}
{{- define "tollgate.consulSelector" -}}
app.kubernetes.io/name: consul
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: store
{{- end -}}

{{- define "tollgate.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "tollgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "tollgate.tag" .) -}}
{{- end -}}

{{- define "tollgate.consulName" -}}
{{- printf "%s-consul" (include "tollgate.fullname" .) -}}
{{- end -}}

{{- define "tollgate.encryptionKeySecret" -}}
{{- .Values.encryptionKey.existingSecret | default (printf "%s-encryption-key" (include "tollgate.fullname" .)) -}}
{{- end -}}

{{- define "tollgate.storeSecret" -}}
{{- .Values.store.credentials.existingSecret | default (printf "%s-store-token" (include "tollgate.fullname" .)) -}}
{{- end -}}

{{- define "tollgate.storeSecretKey" -}}
{{- .Values.store.credentials.secretKey | default (ternary "token" "password" (eq .Values.store.type "consul")) -}}
{{- end -}}

{{/* Checks of values the schema cannot express; each failure says what to set. */}}
{{- define "tollgate.validate" -}}
{{- $s := .Values.store -}}
{{- if and $s.bundled (ne $s.type "consul") -}}
{{- fail "store.bundled: the bundled store is Consul; set store.type=consul, or store.bundled=false with store.endpoint naming your etcd" -}}
{{- end -}}
{{- if and (not $s.bundled) (not $s.endpoint) -}}
{{- fail "store.endpoint: an external store (store.bundled=false) needs its address: host:port for Consul, host:port,host:port,... for etcd" -}}
{{- end -}}
{{- if and $s.bundled $s.endpoint -}}
{{- fail "store.endpoint: set only with store.bundled=false (the bundled Consul has its own address)" -}}
{{- end -}}
{{- if and (not $s.bundled) (not $s.credentials.existingSecret) -}}
{{- fail "store.credentials.existingSecret: an external store needs the Secret holding its ACL token (Consul) or password (etcd)" -}}
{{- end -}}
{{- if and $s.tls.enabled (not $s.tls.secretName) -}}
{{- fail "store.tls.secretName: store.tls.enabled needs the Secret with ca.crt (and tls.crt, tls.key for a client certificate)" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) -}}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" -}}
{{- end -}}
{{- end -}}

{{/* The --kv URL of the store. */}}
{{- define "tollgate.kv" -}}
{{- $s := .Values.store -}}
{{- $q := list -}}
{{- $addr := $s.endpoint -}}
{{- if $s.bundled -}}
{{- $addr = printf "%s:8500" (include "tollgate.consulName" .) -}}
{{- end -}}
{{- if eq $s.type "consul" -}}
{{- $q = append $q (printf "token_file=/var/run/secrets/tollgate/store/%s" (include "tollgate.storeSecretKey" .)) -}}
{{- else -}}
{{- $q = append $q (printf "username=%s" $s.etcdUsername) -}}
{{- $q = append $q (printf "password_file=/var/run/secrets/tollgate/store/%s" (include "tollgate.storeSecretKey" .)) -}}
{{- end -}}
{{- if $s.tls.enabled -}}
{{- $q = append $q "ca_file=/var/run/secrets/tollgate/store-tls/ca.crt" -}}
{{- if $s.tls.clientCertificate -}}
{{- $q = append $q "cert_file=/var/run/secrets/tollgate/store-tls/tls.crt" -}}
{{- $q = append $q "key_file=/var/run/secrets/tollgate/store-tls/tls.key" -}}
{{- end -}}
{{- end -}}
{{- printf "%s://%s?%s" $s.type $addr (join "&" $q) -}}
{{- end -}}

{{/* The store's volume mounts, for the replicas and the Job. */}}
{{- define "tollgate.storeMounts" -}}
- name: store-credentials
  mountPath: /var/run/secrets/tollgate/store
  readOnly: true
{{- if .Values.store.tls.enabled }}
- name: store-tls
  mountPath: /var/run/secrets/tollgate/store-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* The store's volumes: only the keys --kv names, group-readable by the process's fsGroup. */}}
{{- define "tollgate.storeVolumes" -}}
- name: store-credentials
  secret:
    secretName: {{ include "tollgate.storeSecret" . }}
    defaultMode: 0440
    items:
      - key: {{ include "tollgate.storeSecretKey" . }}
        path: {{ include "tollgate.storeSecretKey" . }}
{{- if .Values.store.tls.enabled }}
- name: store-tls
  secret:
    secretName: {{ .Values.store.tls.secretName }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
      {{- if .Values.store.tls.clientCertificate }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- end -}}

{{/*
The annotations of the storeconfig hook's objects, with their weight:
(list . "-10"). With an external store the configuration is published
before the replicas are installed or upgraded; the bundled Consul exists
only once the release is installed, so on install the Job runs after it.
*/}}
{{- define "tollgate.hookAnnotations" -}}
{{- $ := index . 0 -}}
helm.sh/hook: {{ ternary "post-install,pre-upgrade" "pre-install,pre-upgrade" $.Values.store.bundled }}
helm.sh/hook-weight: {{ index . 1 | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
