{{/* Names and labels. */}}
{{- define "sigpin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sigpin.fullname" -}}
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

{{- define "sigpin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sigpin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sigpin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sigpin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sigpin
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "sigpin.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sigpin.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sigpin.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The in-cluster host name Gatekeeper and Kyverno call (in the serving certificate's SANs). */}}
{{- define "sigpin.serviceHost" -}}
{{- printf "%s.%s.svc" (include "sigpin.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "sigpin.baseURL" -}}
{{- printf "https://%s:%d" (include "sigpin.serviceHost" .) (int .Values.server.port) -}}
{{- end -}}

{{- define "sigpin.dnsNames" -}}
{{- $svc := include "sigpin.fullname" . -}}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson -}}
{{- end -}}

{{- define "sigpin.tlsSecretName" -}}
{{- if eq .Values.tls.source "existing" -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "sigpin.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Certificate material, computed once per render and shared by every template through .Values (genCA is random:
calling it twice would give the Secret and the caBundle different CAs). `lookup` keeps what an earlier install
stored, so upgrades neither rotate the CA nor invalidate the caBundle in the policy objects.
Result (JSON): {"ca": PEM, "caKey": PEM, "cert": PEM, "key": PEM}; cert/key are empty unless source is generate.
*/}}
{{- define "sigpin.tlsMaterial" -}}
{{- if not (hasKey .Values "__sigpinTLS") -}}
{{- $out := dict "ca" "" "caKey" "" "cert" "" "key" "" -}}
{{- $fullname := include "sigpin.fullname" . -}}
{{- $days := int .Values.tls.validityDays -}}
{{- if eq .Values.tls.source "generate" -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (printf "%s-tls" $fullname) -}}
{{- if and $old $old.data (index $old.data "ca.crt") (index $old.data "tls.crt") (index $old.data "tls.key") -}}
{{- $_ := set $out "ca" (index $old.data "ca.crt" | b64dec) -}}
{{- $_ := set $out "cert" (index $old.data "tls.crt" | b64dec) -}}
{{- $_ := set $out "key" (index $old.data "tls.key" | b64dec) -}}
{{- else -}}
{{- $ca := genCA "sigpin-ca" $days -}}
{{- $leaf := genSignedCert (include "sigpin.serviceHost" .) nil (include "sigpin.dnsNames" . | fromJsonArray) $days $ca -}}
{{- $_ := set $out "ca" $ca.Cert -}}
{{- $_ := set $out "cert" $leaf.Cert -}}
{{- $_ := set $out "key" $leaf.Key -}}
{{- end -}}
{{- else if and (eq .Values.tls.source "cert-manager") (not .Values.tls.certManager.issuerRef) -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (printf "%s-ca" $fullname) -}}
{{- if and $old $old.data (index $old.data "tls.crt") (index $old.data "tls.key") -}}
{{- $_ := set $out "ca" (index $old.data "tls.crt" | b64dec) -}}
{{- $_ := set $out "caKey" (index $old.data "tls.key" | b64dec) -}}
{{- else -}}
{{- $ca := genCA "sigpin-ca" $days -}}
{{- $_ := set $out "ca" $ca.Cert -}}
{{- $_ := set $out "caKey" $ca.Key -}}
{{- end -}}
{{- else -}}
{{- $_ := set $out "ca" (required "tls.caBundle (PEM of the CA that signed the serving certificate) is required with tls.source existing or tls.certManager.issuerRef" .Values.tls.caBundle) -}}
{{- end -}}
{{- $_ := set .Values "__sigpinTLS" $out -}}
{{- end -}}
{{- index .Values "__sigpinTLS" | toJson -}}
{{- end -}}

{{/* The CA PEM that signed the serving certificate (Kyverno caBundle: raw PEM). */}}
{{- define "sigpin.caPEM" -}}
{{- (include "sigpin.tlsMaterial" . | fromJson).ca | trim -}}
{{- end -}}

{{/* Secrets generated once and kept across upgrades: random value unless a Secret of that name already has one. */}}
{{- define "sigpin.stableRandom" -}}
{{- $ctx := index . 0 -}}
{{- $secret := index . 1 -}}
{{- $key := index . 2 -}}
{{- $cacheKey := printf "__sigpin_%s_%s" $secret $key -}}
{{- if not (hasKey $ctx.Values $cacheKey) -}}
{{- $old := lookup "v1" "Secret" $ctx.Release.Namespace $secret -}}
{{- if and $old $old.data (index $old.data $key) -}}
{{- $_ := set $ctx.Values $cacheKey (index $old.data $key | b64dec) -}}
{{- else -}}
{{- $_ := set $ctx.Values $cacheKey (randAlphaNum 48) -}}
{{- end -}}
{{- end -}}
{{- index $ctx.Values $cacheKey -}}
{{- end -}}

{{- define "sigpin.hmacSecretName" -}}
{{- default (printf "%s-cache-hmac" (include "sigpin.fullname" .)) .Values.cache.hmacKey.existingSecret -}}
{{- end -}}

{{- define "sigpin.redisName" -}}
{{- printf "%s-redis" (include "sigpin.fullname" .) -}}
{{- end -}}

{{/* Redis in use at all (bundled or external). */}}
{{- define "sigpin.redisEnabled" -}}
{{- if or .Values.redis.externalURL .Values.redis.enabled -}}true{{- end -}}
{{- end -}}

{{/* Bundled Redis TLS material, computed once (own CA, kept across upgrades). */}}
{{- define "sigpin.redisTLSMaterial" -}}
{{- if not (hasKey .Values "__sigpinRedisTLS") -}}
{{- $name := printf "%s-tls" (include "sigpin.redisName" .) -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- $out := dict -}}
{{- if and $old $old.data (index $old.data "ca.crt") (index $old.data "tls.crt") (index $old.data "tls.key") -}}
{{- $out = dict "ca" (index $old.data "ca.crt" | b64dec) "cert" (index $old.data "tls.crt" | b64dec) "key" (index $old.data "tls.key" | b64dec) -}}
{{- else -}}
{{- $svc := include "sigpin.redisName" . -}}
{{- $ca := genCA "sigpin-redis-ca" (int .Values.tls.validityDays) -}}
{{- $leaf := genSignedCert $svc nil (list $svc (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace)) (int .Values.tls.validityDays) $ca -}}
{{- $out = dict "ca" $ca.Cert "cert" $leaf.Cert "key" $leaf.Key -}}
{{- end -}}
{{- $_ := set .Values "__sigpinRedisTLS" $out -}}
{{- end -}}
{{- index .Values "__sigpinRedisTLS" | toJson -}}
{{- end -}}

{{/* The cache URL written into the config file (it may carry the Redis password: the config is a Secret). */}}
{{- define "sigpin.cacheURL" -}}
{{- if .Values.redis.externalURL -}}
{{- .Values.redis.externalURL -}}
{{- else if .Values.redis.enabled -}}
{{- $password := include "sigpin.stableRandom" (list . (include "sigpin.redisName" .) "redis-password") -}}
{{- printf "%s://:%s@%s.%s.svc:6379" (ternary "rediss" "redis" .Values.redis.tls.enabled) (urlquery $password) (include "sigpin.redisName" .) .Release.Namespace -}}
{{- else -}}
memory://
{{- end -}}
{{- end -}}

{{/* Namespaces the policies never touch: the release namespace, the engine's own, and excludedNamespaces. */}}
{{- define "sigpin.excludedNamespaces" -}}
{{- $engineNs := ternary .Values.gatekeeper.namespace .Values.kyverno.namespace (eq .Values.engine "gatekeeper") -}}
{{- concat (list .Release.Namespace $engineNs) .Values.excludedNamespaces | uniq | toJson -}}
{{- end -}}

{{/* Whether the provider reads the Kubernetes API (pull secrets, key Secrets). */}}
{{- define "sigpin.kubernetesEnabled" -}}
{{- $secretRefs := false -}}
{{- range .Values.config.authorities -}}
{{- if and .key .key.secretRef -}}{{- $secretRefs = true -}}{{- end -}}
{{- end -}}
{{- if or .Values.pullSecrets.enabled $secretRefs -}}true{{- end -}}
{{- end -}}

{{/*
A policy file shipped in policies/ (reached through files/policies, a symlink to the repository's policies folder),
with the chart's service URL and CA put in place of the placeholders. Argument: (list $ "<path under policies/>").
Edits work on the JSON text, where a string is one token, so a PEM or a URL is replaced whole:
  - https://<anything>.svc[:port]   -> this release's Service URL (path and query kept)
  - "caBundle":"..."                -> base64 PEM for Gatekeeper Providers, raw PEM for Kyverno
Returns the object as JSON; callers adjust fields and print it with toYaml.
*/}}
{{- define "sigpin.policyFile" -}}
{{- $ := index . 0 -}}
{{- $path := printf "files/policies/%s" (index . 1) -}}
{{- $text := $.Files.Get $path -}}
{{- if not $text -}}
{{- fail (printf "policy file %s is missing from the chart (policies/%s in the repository)" $path (index . 1)) -}}
{{- end -}}
{{- $json := $text | fromYaml | toJson -}}
{{- $json = regexReplaceAll "https://[A-Za-z0-9.-]+\\.svc(:[0-9]+)?" $json (include "sigpin.baseURL" $) -}}
{{- $ca := include "sigpin.caPEM" $ -}}
{{- if eq $.Values.engine "gatekeeper" -}}
{{- $json = regexReplaceAllLiteral `"caBundle":"(?:[^"\\]|\\.)*"` $json (printf "\"caBundle\":%s" ($ca | b64enc | toJson)) -}}
{{- else -}}
{{- /* Kyverno takes raw PEM wherever a certificate appears: a caBundle block (lines joined by a newline, `\n` in the
JSON text) or a CEL string literal passed to http.Client (lines joined by an escaped newline, `\\n` in the JSON text).
Each PEM block is replaced by the chart's CA with the same line separator. */ -}}
{{- $lines := splitList "\n" $ca -}}
{{- $json = regexReplaceAllLiteral `-----BEGIN CERTIFICATE-----(?:\\\\n[^"\\]*?)+?\\\\n-----END CERTIFICATE-----` $json (join "\\\\n" $lines) -}}
{{- $json = regexReplaceAllLiteral `-----BEGIN CERTIFICATE-----(?:\\n[^"\\]*?)+?\\n-----END CERTIFICATE-----` $json (join "\\n" $lines) -}}
{{- end -}}
{{- $json -}}
{{- end -}}
