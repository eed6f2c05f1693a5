// Package harness proves policies/gatekeeper with Gatekeeper v3.23.0's own engines against a running sigpin.
//
// It is started by test/gatekeeper/harness.test.ts, which runs a registry with signed and unsigned images, a
// sigpin provider over mutual TLS 1.3, and passes everything through SIGPIN_GK_* variables. Without them the
// tests skip (go test alone has nothing to talk to).
package harness

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"
)

// image is one test image: its tag reference and the digest the tag points to now.
type image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// OldDigest: for moved tags, what the tag pointed to before (the digest the old object runs).
	OldDigest string `json:"oldDigest,omitempty"`
}

func (i image) pinned() string    { return i.Ref + "@" + i.Digest }
func (i image) oldPinned() string { return i.Ref + "@" + i.OldDigest }

type harnessImages struct {
	Signed        image `json:"signed"`
	SignedInit    image `json:"signedInit"`
	Unsigned      image `json:"unsigned"`
	Untrusted     image `json:"untrusted"`
	MovedSigned   image `json:"movedSigned"`
	MovedUnsigned image `json:"movedUnsigned"`
}

type harnessEnv struct {
	policies    string
	provider    string // https://127.0.0.1:PORT
	providerCA  []byte
	clientCert  string
	clientKey   string
	rogueCert   string
	rogueKey    string
	images      harnessImages
	httpsClient *http.Client
}

func loadEnv(t *testing.T) *harnessEnv {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Skipf("%s not set: run through test/gatekeeper/harness.test.ts", name)
		}
		return v
	}
	e := &harnessEnv{
		policies:   get("SIGPIN_GK_POLICIES"),
		provider:   get("SIGPIN_GK_PROVIDER"),
		clientCert: get("SIGPIN_GK_CLIENT_CERT"),
		clientKey:  get("SIGPIN_GK_CLIENT_KEY"),
		rogueCert:  get("SIGPIN_GK_ROGUE_CERT"),
		rogueKey:   get("SIGPIN_GK_ROGUE_KEY"),
	}
	ca, err := os.ReadFile(get("SIGPIN_GK_PROVIDER_CA"))
	if err != nil {
		t.Fatal(err)
	}
	e.providerCA = ca
	if err := json.Unmarshal([]byte(get("SIGPIN_GK_IMAGES")), &e.images); err != nil {
		t.Fatalf("SIGPIN_GK_IMAGES: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("SIGPIN_GK_PROVIDER_CA holds no certificate")
	}
	cert, err := tls.LoadX509KeyPair(e.clientCert, e.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	e.httpsClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
	}}}
	return e
}

// metrics reads the provider's Prometheus text and sums the series of `name` whose labels all match `labels`.
func (e *harnessEnv) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	resp, err := e.httpsClient.Get(e.provider + "/metrics")
	if err != nil {
		t.Fatalf("provider /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("provider /metrics: status %d, %v", resp.StatusCode, err)
	}
	return sumSeries(string(body), name, labels)
}

var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ([^ ]+)`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func sumSeries(text, name string, labels map[string]string) float64 {
	total := 0.0
	for _, line := range strings.Split(text, "\n") {
		m := seriesLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		got := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[3], -1) {
			got[p[1]] = p[2]
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if v, err := strconv.ParseFloat(m[4], 64); match && err == nil {
			total += v
		}
	}
	return total
}

// counters snapshots the provider metrics the scenarios reason about.
type counters struct {
	skipped        float64 // sigpin_verify_skipped_total
	verifyLookups  float64 // sigpin_lookups_total{route="verify"}: keys answered
	registryGETs   float64 // sigpin_registry_requests_total{method="GET"}: manifests and signatures
	verifyRequests float64 // HTTP requests Gatekeeper sent to /gatekeeper/v1/verify
	mutateRequests float64 // HTTP requests Gatekeeper sent to /gatekeeper/v1/mutate
}

func (e *harnessEnv) counters(t *testing.T) counters {
	t.Helper()
	return counters{
		skipped:       e.metric(t, "sigpin_verify_skipped_total", nil),
		verifyLookups: e.metric(t, "sigpin_lookups_total", map[string]string{"route": "verify"}),
		registryGETs:  e.metric(t, "sigpin_registry_requests_total", map[string]string{"method": "GET"}),
		verifyRequests: e.metric(t, "sigpin_request_duration_seconds_count",
			map[string]string{"engine": "gatekeeper", "route": "verify"}),
		mutateRequests: e.metric(t, "sigpin_request_duration_seconds_count",
			map[string]string{"engine": "gatekeeper", "route": "mutate"}),
	}
}

func (c counters) minus(o counters) counters {
	return counters{
		c.skipped - o.skipped, c.verifyLookups - o.verifyLookups, c.registryGETs - o.registryGETs,
		c.verifyRequests - o.verifyRequests, c.mutateRequests - o.mutateRequests,
	}
}

func (c counters) String() string {
	return fmt.Sprintf("verify skipped %v, verify keys answered %v, registry GETs %v, verify requests %v, mutate requests %v",
		c.skipped, c.verifyLookups, c.registryGETs, c.verifyRequests, c.mutateRequests)
}

// deadProviderBase is an https base URL on 127.0.0.1 where nothing listens.
func deadProviderBase(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "https://" + addr
}

// ---- objects under review ----

type ctr struct{ name, image string }

func containers(cs ...ctr) []interface{} {
	out := make([]interface{}, 0, len(cs))
	for _, c := range cs {
		out = append(out, map[string]interface{}{"name": c.name, "image": c.image})
	}
	return out
}

func podSpec(main []ctr, init []ctr, ephemeral []ctr) map[string]interface{} {
	spec := map[string]interface{}{"containers": containers(main...)}
	if len(init) > 0 {
		spec["initContainers"] = containers(init...)
	}
	if len(ephemeral) > 0 {
		spec["ephemeralContainers"] = containers(ephemeral...)
	}
	return spec
}

func meta(name, ns string) map[string]interface{} {
	return map[string]interface{}{"name": name, "namespace": ns, "labels": map[string]interface{}{"app": name}}
}

func pod(ns string, main []ctr, init []ctr, ephemeral []ctr) map[string]interface{} {
	return map[string]interface{}{"apiVersion": "v1", "kind": "Pod", "metadata": meta("p", ns), "spec": podSpec(main, init, ephemeral)}
}

func deployment(ns string, main []ctr, init []ctr) map[string]interface{} {
	return map[string]interface{}{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("d", ns),
		"spec": map[string]interface{}{
			"selector": map[string]interface{}{"matchLabels": map[string]interface{}{"app": "d"}},
			"template": map[string]interface{}{"metadata": map[string]interface{}{"labels": map[string]interface{}{"app": "d"}}, "spec": podSpec(main, init, nil)},
		},
	}
}

func cronJob(ns string, main []ctr) map[string]interface{} {
	return map[string]interface{}{
		"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("c", ns),
		"spec": map[string]interface{}{
			"schedule": "* * * * *",
			"jobTemplate": map[string]interface{}{"spec": map[string]interface{}{
				"template": map[string]interface{}{"spec": podSpec(main, nil, nil)},
			}},
		},
	}
}

// images lists every image of an object by its path, e.g. "spec.template.spec.containers[app]".
func images(obj map[string]interface{}) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v interface{})
	walk = func(prefix string, v interface{}) {
		switch x := v.(type) {
		case map[string]interface{}:
			for k, child := range x {
				walk(strings.TrimPrefix(prefix+"."+k, "."), child)
			}
		case []interface{}:
			for _, item := range x {
				if m, ok := item.(map[string]interface{}); ok {
					if img, ok := m["image"].(string); ok {
						out[fmt.Sprintf("%s[%v]", prefix, m["name"])] = img
					}
				}
			}
		}
	}
	walk("", obj)
	return out
}

func expectImages(t *testing.T, obj map[string]interface{}, want map[string]string) {
	t.Helper()
	got := images(obj)
	for path, w := range want {
		if got[path] != w {
			t.Errorf("%s = %q, want %q (all images: %v)", path, got[path], w, got)
		}
	}
}

func expectAllowed(t *testing.T, v verdict) {
	t.Helper()
	if !v.allowed {
		t.Fatalf("want allowed, got %s", v)
	}
}

func expectDenied(t *testing.T, v verdict, by string, substrings ...string) {
	t.Helper()
	if v.allowed {
		t.Fatalf("want denied by %s, got allowed (messages: %v)", by, v.messages)
	}
	if v.rejectedBy != by {
		t.Fatalf("want denied by %s, got %s", by, v)
	}
	all := strings.Join(v.messages, "\n")
	for _, s := range substrings {
		if !strings.Contains(all, s) {
			t.Errorf("denial should mention %q: %s", s, all)
		}
	}
}

// ---- the shipped objects themselves ----

func TestShippedProviders(t *testing.T) {
	env := loadEnv(t)
	for _, route := range []string{"resolve", "mutate", "verify"} {
		t.Run(route, func(t *testing.T) {
			raw, err := os.ReadFile(fmt.Sprintf("%s/providers/provider-%s.yaml", env.policies, route))
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				APIVersion string                `json:"apiVersion"`
				Kind       string                `json:"kind"`
				Metadata   struct{ Name string } `json:"metadata"`
				Spec       struct {
					URL      string `json:"url"`
					Timeout  int    `json:"timeout"`
					CABundle string `json:"caBundle"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			if p.APIVersion != "externaldata.gatekeeper.sh/v1beta1" || p.Kind != "Provider" || p.Metadata.Name != "sigpin-"+route {
				t.Errorf("want externaldata.gatekeeper.sh/v1beta1 Provider sigpin-%s, got %s %s %s", route, p.APIVersion, p.Kind, p.Metadata.Name)
			}
			if !strings.HasPrefix(p.Spec.URL, "https://") || !strings.HasSuffix(p.Spec.URL, "/gatekeeper/v1/"+route) {
				t.Errorf("url %q: want https://.../gatekeeper/v1/%s", p.Spec.URL, route)
			}
			if p.Spec.Timeout < 1 {
				t.Errorf("timeout %d: 0 times out at once, want >= 1", p.Spec.Timeout)
			}
			if p.Spec.CABundle == "" {
				t.Error("caBundle placeholder missing")
			}
		})
	}
}

// ---- admission through the full bundle (pods + workloads mutators, constraint for all kinds) ----

func TestAdmission(t *testing.T) {
	env := loadEnv(t)
	img := env.images
	gk := newEngine(t, env, engineOptions{
		constraint:   "constraint.yaml",
		mutators:     []string{"pods", "workloads"},
		providerBase: env.provider,
		cacheTTL:     3 * time.Minute,
	})
	const ns = "team-a"

	t.Run("create/pod/signed-is-pinned-and-allowed", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, pod(ns, []ctr{{"app", img.Signed.Ref}}, []ctr{{"init", img.SignedInit.Ref}}, nil), nil)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{
			"spec.containers[app]":      img.Signed.pinned(),
			"spec.initContainers[init]": img.SignedInit.pinned(),
		})
	})
	t.Run("create/pod/unsigned-is-denied", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, pod(ns, []ctr{{"app", img.Signed.Ref}, {"side", img.Unsigned.Ref}}, nil, nil), nil)
		expectDenied(t, v, "validation", "UNSIGNED", "containers[side]")
	})
	t.Run("create/pod/unsigned-init-container-is-denied", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, pod(ns, []ctr{{"app", img.Signed.Ref}}, []ctr{{"init", img.Unsigned.Ref}}, nil), nil)
		expectDenied(t, v, "validation", "UNSIGNED", "initContainers[init]")
	})
	t.Run("create/pod/untrusted-signer-is-denied", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, pod(ns, []ctr{{"app", img.Untrusted.Ref}}, nil, nil), nil)
		expectDenied(t, v, "validation", "UNTRUSTED", "containers[app]")
	})
	t.Run("create/deployment/signed-template-is-pinned-and-allowed", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, deployment(ns, []ctr{{"app", img.Signed.Ref}}, []ctr{{"init", img.SignedInit.Ref}}), nil)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{
			"spec.template.spec.containers[app]":      img.Signed.pinned(),
			"spec.template.spec.initContainers[init]": img.SignedInit.pinned(),
		})
	})
	t.Run("create/deployment/unsigned-is-denied", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, deployment(ns, []ctr{{"app", img.Unsigned.Ref}}, nil), nil)
		expectDenied(t, v, "validation", "UNSIGNED")
	})
	t.Run("create/deployment/untrusted-is-denied", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, deployment(ns, []ctr{{"app", img.Untrusted.Ref}}, nil), nil)
		expectDenied(t, v, "validation", "UNTRUSTED")
	})
	t.Run("create/cronjob/signed-is-pinned-and-allowed", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, cronJob(ns, []ctr{{"job", img.Signed.Ref}}), nil)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.jobTemplate.spec.template.spec.containers[job]": img.Signed.pinned()})
	})
	t.Run("create/pod/one-batched-call-per-webhook", func(t *testing.T) {
		// Four containers, three distinct images, in a namespace no other review used (no cache hits).
		obj := pod("batch", []ctr{{"a", img.Signed.Ref}, {"b", img.SignedInit.Ref}, {"c", img.Signed.Ref}}, []ctr{{"i", img.Unsigned.Ref}}, nil)
		before := env.counters(t)
		v := gk.admit(t, admissionv1.Create, obj, nil)
		delta := env.counters(t).minus(before)
		t.Logf("provider metrics delta: %s", delta)
		expectDenied(t, v, "validation", "initContainers[i]", "UNSIGNED")
		if delta.mutateRequests != 1 || delta.verifyRequests != 1 {
			t.Errorf("want one mutate and one verify request for the whole Pod, got %v and %v", delta.mutateRequests, delta.verifyRequests)
		}
		if delta.verifyLookups != 3 {
			t.Errorf("want the 3 distinct images verified in that one request, got %v keys", delta.verifyLookups)
		}
	})
	t.Run("create/pod/already-pinned-stays-as-is", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, pod(ns, []ctr{{"app", img.Signed.pinned()}}, nil, nil), nil)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.containers[app]": img.Signed.pinned()})
	})

	t.Run("update/deployment/tag-still-at-old-digest-skips-signature-checks", func(t *testing.T) {
		// GitOps re-sends the tag over the pinned object; the tag still resolves to the running digest.
		old := deployment(ns, []ctr{{"app", img.Signed.pinned()}}, []ctr{{"init", img.SignedInit.pinned()}})
		before := env.counters(t)
		v := gk.admit(t, admissionv1.Update, deployment(ns, []ctr{{"app", img.Signed.Ref}}, []ctr{{"init", img.SignedInit.Ref}}), old)
		delta := env.counters(t).minus(before)
		t.Logf("provider metrics delta: %s", delta)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{
			"spec.template.spec.containers[app]":      img.Signed.pinned(),
			"spec.template.spec.initContainers[init]": img.SignedInit.pinned(),
		})
		if delta.skipped != 2 {
			t.Errorf("sigpin_verify_skipped_total grew by %v, want 2 (one per unchanged container)", delta.skipped)
		}
		if delta.registryGETs != 0 {
			t.Errorf("registry GETs grew by %v, want 0 (no manifest or signature fetch on an unchanged digest)", delta.registryGETs)
		}
	})
	t.Run("update/pod/unchanged-digest-is-not-verified-again", func(t *testing.T) {
		// The old Pod already runs the unsigned digest (admitted before the policy): an UPDATE that keeps it
		// is answered "unchanged" without a signature check, which is why it is allowed.
		old := pod(ns, []ctr{{"app", img.Unsigned.pinned()}}, nil, nil)
		before := env.counters(t)
		v := gk.admit(t, admissionv1.Update, pod(ns, []ctr{{"app", img.Unsigned.Ref}}, nil, nil), old)
		delta := env.counters(t).minus(before)
		t.Logf("provider metrics delta: %s", delta)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.containers[app]": img.Unsigned.pinned()})
		if delta.skipped != 1 {
			t.Errorf("sigpin_verify_skipped_total grew by %v, want 1", delta.skipped)
		}
	})
	t.Run("update/deployment/tag-moved-to-signed-digest-is-verified-and-pinned", func(t *testing.T) {
		old := deployment(ns, []ctr{{"app", img.MovedSigned.oldPinned()}}, nil)
		before := env.counters(t)
		v := gk.admit(t, admissionv1.Update, deployment(ns, []ctr{{"app", img.MovedSigned.Ref}}, nil), old)
		delta := env.counters(t).minus(before)
		t.Logf("provider metrics delta: %s", delta)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.template.spec.containers[app]": img.MovedSigned.pinned()})
		if delta.skipped != 0 {
			t.Errorf("sigpin_verify_skipped_total grew by %v, want 0 (the digest changed)", delta.skipped)
		}
		if delta.registryGETs == 0 { // no earlier subtest touches this digest, so sigpin has no verdict cached
			t.Error("no registry GET: the new digest's signatures were not fetched")
		}
	})
	t.Run("update/deployment/tag-moved-to-unsigned-digest-is-denied", func(t *testing.T) {
		old := deployment(ns, []ctr{{"app", img.MovedUnsigned.oldPinned()}}, nil)
		before := env.counters(t)
		v := gk.admit(t, admissionv1.Update, deployment(ns, []ctr{{"app", img.MovedUnsigned.Ref}}, nil), old)
		delta := env.counters(t).minus(before)
		t.Logf("provider metrics delta: %s", delta)
		expectDenied(t, v, "validation", "UNSIGNED")
		if delta.skipped != 0 {
			t.Errorf("sigpin_verify_skipped_total grew by %v, want 0", delta.skipped)
		}
	})
	t.Run("update/pod/unsigned-ephemeral-container-is-denied", func(t *testing.T) {
		old := pod(ns, []ctr{{"app", img.Signed.pinned()}}, nil, nil)
		v := gk.admit(t, admissionv1.Update, pod(ns, []ctr{{"app", img.Signed.pinned()}}, nil, []ctr{{"debug", img.Unsigned.Ref}}), old)
		expectDenied(t, v, "validation", "UNSIGNED", "ephemeralContainers[debug]")
	})
	t.Run("update/pod/signed-ephemeral-container-is-pinned", func(t *testing.T) {
		old := pod(ns, []ctr{{"app", img.Signed.pinned()}}, nil, nil)
		v := gk.admit(t, admissionv1.Update, pod(ns, []ctr{{"app", img.Signed.pinned()}}, nil, []ctr{{"debug", img.SignedInit.Ref}}), old)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.ephemeralContainers[debug]": img.SignedInit.pinned()})
	})

	t.Run("cache/second-review-is-served-by-gatekeeper", func(t *testing.T) {
		// A namespace of its own gives keys no earlier review used.
		obj := pod("cache-test", []ctr{{"app", img.Signed.pinned()}, {"side", img.Unsigned.pinned()}}, nil, nil)
		before := env.counters(t)
		first := gk.admit(t, admissionv1.Create, obj, nil)
		middle := env.counters(t)
		second := gk.admit(t, admissionv1.Create, obj, nil)
		after := env.counters(t)
		t.Logf("first review: %s; second review: %s", middle.minus(before), after.minus(middle))
		expectDenied(t, first, "validation", "UNSIGNED")
		expectDenied(t, second, "validation", "UNSIGNED")
		if strings.Join(first.messages, "\n") != strings.Join(second.messages, "\n") {
			t.Errorf("cached review differs:\n%v\n%v", first.messages, second.messages)
		}
		if got := middle.minus(before).verifyLookups; got != 2 {
			t.Errorf("first review: provider answered %v verify keys, want 2", got)
		}
		if got := after.minus(middle).verifyLookups; got != 0 {
			t.Errorf("second review: provider answered %v verify keys, want 0 (Gatekeeper's response cache)", got)
		}
	})

	t.Run("audit/unsigned-deployment-is-reported", func(t *testing.T) {
		msgs := gk.audit(t, deployment("audited", []ctr{{"app", img.Unsigned.Ref}}, nil))
		if len(msgs) != 1 || !strings.Contains(msgs[0], "UNSIGNED") {
			t.Errorf("audit: want one UNSIGNED violation, got %v", msgs)
		}
	})
	t.Run("audit/signed-deployment-is-clean", func(t *testing.T) {
		if msgs := gk.audit(t, deployment("audited", []ctr{{"app", img.Signed.Ref}}, nil)); len(msgs) != 0 {
			t.Errorf("audit: want no violation, got %v", msgs)
		}
	})
}

// ---- pods-only installation: workloads untouched, Pods pinned and verified ----

func TestPodsOnly(t *testing.T) {
	env := loadEnv(t)
	img := env.images
	gk := newEngine(t, env, engineOptions{
		constraint:   "constraint-pods-only.yaml",
		mutators:     []string{"pods"},
		providerBase: env.provider,
		cacheTTL:     3 * time.Minute,
	})
	t.Run("deployment/is-neither-rewritten-nor-checked", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, deployment("pods-only", []ctr{{"app", img.Unsigned.Ref}}, nil), nil)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.template.spec.containers[app]": img.Unsigned.Ref})
	})
	t.Run("pod/signed-is-pinned", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, pod("pods-only", []ctr{{"app", img.Signed.Ref}}, nil, nil), nil)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.containers[app]": img.Signed.pinned()})
	})
	t.Run("pod/unsigned-is-denied", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, pod("pods-only", []ctr{{"app", img.Unsigned.Ref}}, nil, nil), nil)
		expectDenied(t, v, "validation", "UNSIGNED")
	})
}

// ---- CREATE-only mutators: UPDATEs are verified but not rewritten ----

func TestCreateOnly(t *testing.T) {
	env := loadEnv(t)
	img := env.images
	gk := newEngine(t, env, engineOptions{
		constraint:   "constraint.yaml",
		mutators:     []string{"pods-create-only", "workloads-create-only"},
		providerBase: env.provider,
		cacheTTL:     3 * time.Minute,
	})
	t.Run("create/is-pinned", func(t *testing.T) {
		v := gk.admit(t, admissionv1.Create, deployment("create-only", []ctr{{"app", img.Signed.Ref}}, nil), nil)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.template.spec.containers[app]": img.Signed.pinned()})
	})
	t.Run("update/is-verified-but-not-rewritten", func(t *testing.T) {
		old := deployment("create-only", []ctr{{"app", img.Signed.pinned()}}, nil)
		v := gk.admit(t, admissionv1.Update, deployment("create-only", []ctr{{"app", img.Signed.Ref}}, nil), old)
		expectAllowed(t, v)
		expectImages(t, v.object, map[string]string{"spec.template.spec.containers[app]": img.Signed.Ref})
	})
	t.Run("update/unsigned-is-still-denied", func(t *testing.T) {
		old := deployment("create-only", []ctr{{"app", img.Signed.pinned()}}, nil)
		v := gk.admit(t, admissionv1.Update, deployment("create-only", []ctr{{"app", img.Unsigned.Ref}}, nil), old)
		expectDenied(t, v, "validation", "UNSIGNED")
	})
}

// ---- failures: closed, never open ----

func TestProviderDown(t *testing.T) {
	env := loadEnv(t)
	img := env.images
	dead := deadProviderBase(t)
	t.Run("validation/denies", func(t *testing.T) {
		gk := newEngine(t, env, engineOptions{constraint: "constraint.yaml", providerBase: dead, cacheTTL: 3 * time.Minute})
		v := gk.admit(t, admissionv1.Create, pod("down", []ctr{{"app", img.Signed.pinned()}}, nil, nil), nil)
		expectDenied(t, v, "validation", "unavailable")
	})
	t.Run("mutation/rejects", func(t *testing.T) {
		gk := newEngine(t, env, engineOptions{constraint: "constraint.yaml", mutators: []string{"pods"}, providerBase: dead, cacheTTL: 3 * time.Minute})
		v := gk.admit(t, admissionv1.Create, pod("down", []ctr{{"app", img.Signed.Ref}}, nil, nil), nil)
		expectDenied(t, v, "mutation", "sigpin-mutate")
	})
}

func TestMutualTLS(t *testing.T) {
	env := loadEnv(t)
	img := env.images
	// A Gatekeeper whose client certificate was not issued by the CA sigpin trusts (server.tls.clientCAFile).
	rogue := *env
	rogue.clientCert, rogue.clientKey = env.rogueCert, env.rogueKey
	t.Run("validation/untrusted-client-is-denied", func(t *testing.T) {
		gk := newEngine(t, &rogue, engineOptions{constraint: "constraint.yaml", providerBase: env.provider})
		v := gk.admit(t, admissionv1.Create, pod("mtls", []ctr{{"app", img.Signed.pinned()}}, nil, nil), nil)
		expectDenied(t, v, "validation")
	})
	t.Run("mutation/untrusted-client-is-rejected", func(t *testing.T) {
		gk := newEngine(t, &rogue, engineOptions{constraint: "constraint.yaml", mutators: []string{"pods"}, providerBase: env.provider})
		v := gk.admit(t, admissionv1.Create, pod("mtls", []ctr{{"app", img.Signed.Ref}}, nil, nil), nil)
		expectDenied(t, v, "mutation")
	})
}
