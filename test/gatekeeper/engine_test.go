package harness

// The Gatekeeper side: the shipped policy files loaded into Gatekeeper v3.23.0's own engines, wired the way
// Gatekeeper's main.go wires them (rego driver with external data, provider cache, response cache, client
// certificate watcher; mutation system with the same provider cache and watcher). Only the webhook plumbing and
// the API server are stood in for: admit() runs mutation, then validation, as the API server calls the mutating
// webhook before the validating one.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	externaldataunversioned "github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/open-policy-agent/frameworks/constraint/pkg/types"
	"github.com/open-policy-agent/gatekeeper/v3/apis"
	mutationsunversioned "github.com/open-policy-agent/gatekeeper/v3/apis/mutations/unversioned"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/mutation"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/mutators/assign"
	mutationtypes "github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/yaml"
)

// engineOptions selects which shipped files an engine loads and where its Providers point.
type engineOptions struct {
	// constraint is a file under policies/gatekeeper/template/.
	constraint string
	// mutators are folders under policies/gatekeeper/mutation/.
	mutators []string
	// providerBase replaces scheme://host:port of every Provider url (the path stays as shipped).
	providerBase string
	// cacheTTL is Gatekeeper's --external-data-provider-response-cache-ttl (0: no cache).
	cacheTTL time.Duration
}

type engine struct {
	validation *constraintclient.Client
	mutation   *mutation.System
}

// verdict is the outcome of one admission request.
type verdict struct {
	allowed bool
	// rejectedBy says which webhook refused: "mutation" or "validation".
	rejectedBy string
	messages   []string
	// object is the object as stored after mutation (nil when rejected by mutation).
	object map[string]interface{}
}

func (v verdict) String() string {
	if v.allowed {
		return "allowed"
	}
	return fmt.Sprintf("denied by %s: %s", v.rejectedBy, strings.Join(v.messages, " | "))
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := apis.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

func newEngine(t *testing.T, env *harnessEnv, o engineOptions) *engine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	providerCache := externaldata.NewCache()
	for _, p := range loadProviders(t, env, o.providerBase) {
		if err := providerCache.Upsert(p); err != nil {
			t.Fatalf("Gatekeeper rejects Provider %s: %v", p.Name, err)
		}
	}
	// Gatekeeper's client certificate: its webhook serving cert, read through the same watcher type.
	certWatcher, err := certwatcher.New(env.clientCert, env.clientKey)
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}

	args := []rego.Arg{
		rego.Tracing(false),
		rego.DisableBuiltins("http.send"), // Gatekeeper's default --disable-opa-builtin
		rego.AddExternalDataProviderCache(providerCache),
		rego.EnableExternalDataClientAuth(),
		rego.AddExternalDataClientCertWatcher(certWatcher),
		rego.Externs(),
	}
	if o.cacheTTL > 0 {
		args = append(args, rego.AddExternalDataProviderResponseCache(externaldata.NewProviderResponseCache(ctx, o.cacheTTL)))
	}
	driver, err := rego.New(args...)
	if err != nil {
		t.Fatalf("rego driver: %v", err)
	}
	client, err := constraintclient.NewClient(
		constraintclient.Targets(&target.K8sValidationTarget{}),
		constraintclient.Driver(driver),
		constraintclient.EnforcementPoints(util.WebhookEnforcementPoint, util.AuditEnforcementPoint),
	)
	if err != nil {
		t.Fatalf("constraint client: %v", err)
	}
	policies := os.DirFS(env.policies)
	tmpl, err := reader.ReadTemplate(scheme, policies, "template/constrainttemplate.yaml")
	if err != nil {
		t.Fatalf("read template: %v", err)
	}
	if _, err := client.AddTemplate(ctx, tmpl); err != nil {
		t.Fatalf("Gatekeeper rejects the ConstraintTemplate: %v", err)
	}
	if o.constraint != "" {
		c, err := reader.ReadConstraint(policies, "template/"+o.constraint)
		if err != nil {
			t.Fatalf("read constraint: %v", err)
		}
		if _, err := client.AddConstraint(ctx, c); err != nil {
			t.Fatalf("Gatekeeper rejects constraint %s: %v", o.constraint, err)
		}
	}

	system := mutation.NewSystem(mutation.SystemOpts{ProviderCache: providerCache, ClientCertWatcher: certWatcher})
	for _, dir := range o.mutators {
		for _, a := range loadAssigns(t, filepath.Join(env.policies, "mutation", dir)) {
			m, err := assign.MutatorForAssign(a)
			if err != nil {
				t.Fatalf("Gatekeeper rejects Assign %s: %v", a.Name, err)
			}
			if err := system.Upsert(m); err != nil {
				t.Fatalf("mutation system rejects Assign %s: %v", a.Name, err)
			}
		}
	}
	return &engine{validation: client, mutation: system}
}

// loadProviders reads the shipped Provider objects and points them at the provider under test: same path,
// scheme and timeout as shipped, host replaced, caBundle = base64(PEM) of the test CA.
func loadProviders(t *testing.T, env *harnessEnv, base string) []*externaldataunversioned.Provider {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(env.policies, "providers", "provider-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Provider files in %s/providers (%v)", env.policies, err)
	}
	b, err := url.Parse(base)
	if err != nil {
		t.Fatalf("provider base %q: %v", base, err)
	}
	var out []*externaldataunversioned.Provider
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := &externaldataunversioned.Provider{}
		if err := yaml.UnmarshalStrict(raw, p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		u, err := url.Parse(p.Spec.URL)
		if err != nil {
			t.Fatalf("%s: url: %v", f, err)
		}
		u.Scheme, u.Host = b.Scheme, b.Host
		p.Spec.URL = u.String()
		p.Spec.CABundle = base64.StdEncoding.EncodeToString(env.providerCA)
		out = append(out, p)
	}
	return out
}

func loadAssigns(t *testing.T, dir string) []*mutationsunversioned.Assign {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Assign files in %s (%v)", dir, err)
	}
	sort.Strings(files)
	var out []*mutationsunversioned.Assign
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		u, err := reader.ReadUnstructured(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if u.GetKind() != "Assign" || u.GetAPIVersion() != "mutations.gatekeeper.sh/v1" {
			t.Fatalf("%s: want mutations.gatekeeper.sh/v1 Assign, got %s %s", f, u.GetAPIVersion(), u.GetKind())
		}
		a := &mutationsunversioned.Assign{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, a, true); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, a)
	}
	return out
}

func namespaceObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/metadata.name": name}}}
}

// admit runs one admission request the way the API server would: Gatekeeper's mutating webhook (mutation
// system, as pkg/webhook/mutation.go calls it), then its validating webhook (constraint client review of an
// AugmentedReview, as pkg/webhook/policy.go builds it) on the mutated object.
func (g *engine) admit(t *testing.T, op admissionv1.Operation, obj, old map[string]interface{}) verdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := &unstructured.Unstructured{Object: deepCopy(obj)}
	ns := u.GetNamespace()
	mutable := &mutationtypes.Mutable{
		Object:    u,
		Namespace: namespaceObject(ns),
		Username:  "system:serviceaccount:flux-system:kustomize-controller",
		Source:    mutationtypes.SourceTypeOriginal,
		Operation: op,
	}
	if _, err := g.mutation.Mutate(ctx, mutable); err != nil {
		v := verdict{rejectedBy: "mutation", messages: []string{err.Error()}}
		t.Logf("%s %s: %s", op, u.GetKind(), v)
		return v
	}
	res, err := g.review(ctx, op, u.Object, old)
	if err != nil {
		t.Fatalf("validation review failed: %v", err)
	}
	v := verdict{allowed: true, object: u.Object}
	for _, r := range res {
		if r.EnforcementAction == "deny" {
			v.allowed = false
			v.rejectedBy = "validation"
		}
		v.messages = append(v.messages, r.Msg)
	}
	sort.Strings(v.messages)
	t.Logf("%s %s: %s; images after mutation: %v", op, u.GetKind(), v, images(u.Object))
	return v
}

func (g *engine) review(ctx context.Context, op admissionv1.Operation, obj, old map[string]interface{}) ([]*types.Result, error) {
	u := &unstructured.Unstructured{Object: obj}
	gvk := u.GroupVersionKind()
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	req := &admissionv1.AdmissionRequest{
		UID:       k8stypes.UID(fmt.Sprintf("sigpin-%d", time.Now().UnixNano())),
		Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Resource:  metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"},
		Name:      u.GetName(),
		Namespace: u.GetNamespace(),
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
	}
	if old != nil {
		oldRaw, err := json.Marshal(old)
		if err != nil {
			return nil, err
		}
		req.OldObject = runtime.RawExtension{Raw: oldRaw}
	}
	ns := namespaceObject(u.GetNamespace())
	review := &target.AugmentedReview{AdmissionRequest: req, Namespace: ns, Source: mutationtypes.SourceTypeOriginal, IsAdmission: true}
	opts := []reviews.ReviewOpt{reviews.EnforcementPoint(util.WebhookEnforcementPoint)}
	if opt := util.NamespaceReviewOpt(ns, logr.Discard()); opt != nil {
		opts = append(opts, opt)
	}
	resp, err := g.validation.Review(ctx, review, opts...)
	if err != nil {
		return nil, err
	}
	return resp.Results(), nil
}

// audit reviews a stored object the way Gatekeeper's audit manager does: an AugmentedUnstructured, no
// operation, no old object, the audit enforcement point.
func (g *engine) audit(t *testing.T, obj map[string]interface{}) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := unstructured.Unstructured{Object: deepCopy(obj)}
	au := &target.AugmentedUnstructured{Object: u, Namespace: namespaceObject(u.GetNamespace()), Source: mutationtypes.SourceTypeOriginal}
	resp, err := g.validation.Review(ctx, au, reviews.EnforcementPoint(util.AuditEnforcementPoint))
	if err != nil {
		t.Fatalf("audit review failed: %v", err)
	}
	var msgs []string
	for _, r := range resp.Results() {
		msgs = append(msgs, r.Msg)
	}
	sort.Strings(msgs)
	return msgs
}

func deepCopy(obj map[string]interface{}) map[string]interface{} {
	return runtime.DeepCopyJSON(obj)
}
