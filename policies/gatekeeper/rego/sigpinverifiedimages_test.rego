# Unit tests for sigpinverifiedimages.rego. external_data is Gatekeeper's builtin: `opa test` learns its
# signature from a capabilities file (test/gatekeeper/policies.test.ts writes one: OPA's own plus external_data)
# and every test replaces it with a mock function through `with`.
package sigpinverifiedimages_test

import data.sigpinverifiedimages as policy

digest := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

verdict := {"digest": digest, "pinned": "x", "policy": "acme", "mode": "mutate", "verified": true, "signatures": []}

# Every key trusted; the status code is 0, as when Gatekeeper served every key from its cache.
all_trusted(req) := {
	"responses": [[k, verdict] | some k in req.keys],
	"errors": [],
	"status_code": 0,
	"system_error": "",
}

# Keys mentioning "unsigned" get a definitive item error, the rest a verdict.
some_unsigned(req) := {
	"responses": [[k, verdict] | some k in req.keys; not contains(k, "unsigned")],
	"errors": [[k, "UNSIGNED: no signature found"] | some k in req.keys; contains(k, "unsigned")],
	"status_code": 200,
	"system_error": "",
}

# A transient failure: no items, only systemError.
provider_down(_) := {"responses": [], "errors": [], "status_code": 200, "system_error": "REGISTRY_UNAVAILABLE: timeout"}

# Gatekeeper's error path (HandleError): responses and errors null, status 500.
transport_error(_) := {"responses": null, "errors": null, "status_code": 500, "system_error": "dial tcp: connection refused"}

# The provider forgot a key: answers only the first one.
drops_keys(req) := {"responses": [[req.keys[0], verdict]], "errors": [], "status_code": 200, "system_error": ""}

# The Provider object points at the resolve route by mistake: values are digest strings.
digest_strings(req) := {"responses": [[k, digest] | some k in req.keys], "errors": [], "status_code": 200, "system_error": ""}

# Never answers, as when the builtin itself errors: a review that calls it gets the "no reply" denial, so the
# tests expecting no denial with this mock also prove that no call was made.
never_called(_) := x if {
	x := input.no_such_field
}

# Echoes the request so a test can read the keys and provider that were sent.
echo(req) := {"responses": [], "errors": [], "status_code": 200, "system_error": "", "request": req}

pod(containers) := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": "p", "namespace": "team-a"},
	"spec": {"containers": containers},
}

ctr(name, image) := {"name": name, "image": image}

create(obj) := {"review": {
	"operation": "CREATE",
	"kind": {"group": "", "version": "v1", "kind": obj.kind},
	"namespace": "team-a",
	"object": obj,
}}

update(obj, old) := {"review": {
	"operation": "UPDATE",
	"kind": {"group": "", "version": "v1", "kind": obj.kind},
	"namespace": "team-a",
	"object": obj,
	"oldObject": old,
}}

# Audit: Gatekeeper builds the review from the stored object, with no operation and no oldObject.
audit(obj) := {"review": {
	"kind": {"group": "", "version": "v1", "kind": obj.kind},
	"namespace": obj.metadata.namespace,
	"object": obj,
}}

deployment(containers) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "d", "namespace": "team-a"},
	"spec": {"template": {"spec": {"containers": containers}}},
}

cronjob(containers) := {
	"apiVersion": "batch/v1",
	"kind": "CronJob",
	"metadata": {"name": "c", "namespace": "team-a"},
	"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": containers}}}}},
}

test_trusted_pod_is_allowed if {
	count(policy.violation) == 0 with input as create(pod([ctr("app", "ghcr.io/acme/app:1.0")]))
		with external_data as all_trusted
}

test_status_code_zero_from_cache_is_not_a_failure if {
	r := all_trusted({"keys": ["k"]})
	r.status_code == 0
	count(policy.violation) == 0 with input as create(pod([ctr("app", "ghcr.io/acme/app:1.0")]))
		with external_data as all_trusted
}

test_keys_carry_namespace_prefix if {
	policy.keys == ["[ns=team-a]ghcr.io/acme/app:1.0"] with input as create(pod([ctr("app", "ghcr.io/acme/app:1.0")]))
}

test_one_batch_with_every_container_list_deduplicated if {
	obj := {
		"apiVersion": "v1",
		"kind": "Pod",
		"metadata": {"name": "p", "namespace": "team-a"},
		"spec": {
			"containers": [ctr("a", "r.example/a:1"), ctr("b", "r.example/b:1"), ctr("same", "r.example/a:1")],
			"initContainers": [ctr("init", "r.example/init:1")],
			"ephemeralContainers": [ctr("debug", "r.example/debug:1")],
		},
	}
	sent := policy.reply.request with input as create(obj) with external_data as echo
	sent.provider == "sigpin-verify"
	sent.keys == [
		"[ns=team-a]r.example/a:1",
		"[ns=team-a]r.example/b:1",
		"[ns=team-a]r.example/debug:1",
		"[ns=team-a]r.example/init:1",
	]
}

test_provider_name_from_parameters if {
	i := object.union(create(pod([ctr("app", "r.example/a:1")])), {"parameters": {"provider": "other-verify"}})
	sent := policy.reply.request with input as i with external_data as echo
	sent.provider == "other-verify"
}

test_unsigned_container_is_denied_with_its_code if {
	obj := pod([ctr("app", "r.example/app:1"), ctr("side", "r.example/unsigned:1")])
	v := policy.violation with input as create(obj) with external_data as some_unsigned
	count(v) == 1
	some x in v
	contains(x.msg, "containers[side]")
	contains(x.msg, "UNSIGNED: no signature found")
}

test_unsigned_init_and_ephemeral_containers_are_denied if {
	obj := {
		"apiVersion": "v1",
		"kind": "Pod",
		"metadata": {"name": "p", "namespace": "team-a"},
		"spec": {
			"containers": [ctr("app", "r.example/app:1")],
			"initContainers": [ctr("init", "r.example/unsigned-init:1")],
			"ephemeralContainers": [ctr("debug", "r.example/unsigned-debug:1")],
		},
	}
	v := policy.violation with input as create(obj) with external_data as some_unsigned
	msgs := {x.msg | some x in v}
	count(msgs) == 2
	some m1 in msgs
	contains(m1, "initContainers[init]")
	some m2 in msgs
	contains(m2, "ephemeralContainers[debug]")
}

test_system_error_denies if {
	v := policy.violation with input as create(pod([ctr("app", "r.example/app:1")]))
		with external_data as provider_down
	count(v) == 1
	some x in v
	contains(x.msg, "REGISTRY_UNAVAILABLE: timeout")
}

test_transport_error_denies if {
	v := policy.violation with input as create(pod([ctr("app", "r.example/app:1")]))
		with external_data as transport_error
	count(v) == 1
	some x in v
	contains(x.msg, "connection refused")
}

test_missing_key_denies if {
	obj := pod([ctr("a", "r.example/a:1"), ctr("b", "r.example/b:1")])
	v := policy.violation with input as create(obj) with external_data as drops_keys
	count(v) == 1
	some x in v
	contains(x.msg, "containers[b]")
	contains(x.msg, "no answer")
}

test_value_that_is_not_a_verdict_denies if {
	v := policy.violation with input as create(pod([ctr("a", "r.example/a:1")])) with external_data as digest_strings
	count(v) == 1
	some x in v
	contains(x.msg, "not a verdict")
}

test_no_reply_at_all_denies if {
	# A builtin error leaves the reply undefined; the policy must not read that as "nothing to deny".
	v := policy.violation with input as create(pod([ctr("a", "r.example/a:1")])) with external_data as never_called
	count(v) == 1
	some x in v
	contains(x.msg, "no reply")
}

test_exempt_images_are_not_sent if {
	i := object.union(
		create(pod([ctr("a", "registry.k8s.io/pause:3.10"), ctr("b", "r.example/team/b:1")])),
		{"parameters": {"exemptImages": ["registry.k8s.io/*", "r.example/**/nothing*"]}},
	)
	policy.keys == ["[ns=team-a]r.example/team/b:1"] with input as i
}

test_exempt_glob_star_stays_in_one_path_component if {
	i := object.union(
		create(pod([ctr("a", "r.example/team/sub/a:1")])),
		{"parameters": {"exemptImages": ["r.example/team/*"]}},
	)
	policy.keys == ["[ns=team-a]r.example/team/sub/a:1"] with input as i
}

test_exempt_glob_double_star_crosses_components if {
	i := object.union(
		create(pod([ctr("a", "r.example/team/sub/a:1")])),
		{"parameters": {"exemptImages": ["r.example/team/**"]}},
	)
	count(policy.keys) == 0 with input as i
}

test_all_exempt_makes_no_call if {
	i := object.union(create(pod([ctr("a", "registry.k8s.io/pause:3.10")])), {"parameters": {"exemptImages": ["registry.k8s.io/**"]}})
	count(policy.violation) == 0 with input as i with external_data as never_called
}

test_deployment_template_is_checked if {
	sent := policy.reply.request with input as create(deployment([ctr("app", "r.example/app:1")])) with external_data as echo
	sent.keys == ["[ns=team-a]r.example/app:1"]
}

test_every_workload_kind_is_checked if {
	every k in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"] {
		obj := object.union(deployment([ctr("app", "r.example/unsigned:1")]), {"kind": k})
		count(policy.violation) == 1 with input as create(obj) with external_data as some_unsigned
	}
}

test_cronjob_template_is_checked if {
	v := policy.violation with input as create(cronjob([ctr("app", "r.example/unsigned:1")])) with external_data as some_unsigned
	count(v) == 1
}

test_pods_only_ignores_workloads if {
	i := object.union(create(deployment([ctr("app", "r.example/unsigned:1")])), {"parameters": {"podsOnly": true}})
	count(policy.keys) == 0 with input as i
	count(policy.violation) == 0 with input as i with external_data as never_called
}

test_pods_only_still_checks_pods if {
	i := object.union(create(pod([ctr("app", "r.example/unsigned:1")])), {"parameters": {"podsOnly": true}})
	count(policy.violation) == 1 with input as i with external_data as some_unsigned
}

test_other_kinds_are_ignored if {
	obj := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team-a"}, "data": {"image": "x"}}
	count(policy.keys) == 0 with input as create(obj)
}

test_update_sends_old_image_of_same_named_container if {
	old := pod([
		ctr("app", "r.example/app:1@sha256:aaaa"),
		ctr("side", "r.example/side:1@sha256:bbbb"),
	])
	new := pod([
		ctr("side", "r.example/side:1"),
		ctr("app", "r.example/app:1"),
		ctr("added", "r.example/added:1"),
	])
	policy.keys == [
		"[ns=team-a,old=r.example/app:1@sha256:aaaa]r.example/app:1",
		"[ns=team-a,old=r.example/side:1@sha256:bbbb]r.example/side:1",
		"[ns=team-a]r.example/added:1",
	]
		with input as update(new, old)
}

test_update_leaves_out_an_unpinned_old_image if {
	old := pod([ctr("app", "r.example/app:1")])
	new := pod([ctr("app", "r.example/app:1")])
	policy.keys == ["[ns=team-a]r.example/app:1"] with input as update(new, old)
}

test_update_never_puts_an_ipv6_old_image_in_the_prefix if {
	old := pod([ctr("app", "[::1]:5000/app:1@sha256:aaaa")])
	new := pod([ctr("app", "[::1]:5000/app:1")])
	policy.keys == ["[ns=team-a][::1]:5000/app:1"] with input as update(new, old)
}

test_update_old_image_only_from_the_same_list if {
	old := {
		"apiVersion": "v1",
		"kind": "Pod",
		"metadata": {"name": "p", "namespace": "team-a"},
		"spec": {"containers": [ctr("app", "r.example/app:1")], "initContainers": [ctr("init", "r.example/init:1@sha256:cccc")]},
	}
	new := {
		"apiVersion": "v1",
		"kind": "Pod",
		"metadata": {"name": "p", "namespace": "team-a"},
		"spec": {"containers": [ctr("init", "r.example/init:1")]},
	}
	policy.keys == ["[ns=team-a]r.example/init:1"] with input as update(new, old)
}

test_update_of_deployment_uses_old_template if {
	old := deployment([ctr("app", "r.example/app:1@sha256:aaaa")])
	new := deployment([ctr("app", "r.example/app:1")])
	policy.keys == ["[ns=team-a,old=r.example/app:1@sha256:aaaa]r.example/app:1"] with input as update(new, old)
}

test_update_of_cronjob_uses_old_template if {
	old := cronjob([ctr("app", "r.example/app:1@sha256:aaaa")])
	new := cronjob([ctr("app", "r.example/app:1")])
	policy.keys == ["[ns=team-a,old=r.example/app:1@sha256:aaaa]r.example/app:1"] with input as update(new, old)
}

test_update_unsigned_new_digest_is_denied if {
	old := pod([ctr("app", "r.example/app:1@sha256:aaaa")])
	new := pod([ctr("app", "r.example/unsigned:2")])
	count(policy.violation) == 1 with input as update(new, old) with external_data as some_unsigned
}

test_create_never_sends_old if {
	i := {"review": object.union(create(pod([ctr("app", "r.example/app:1")])).review, {"oldObject": pod([ctr("app", "r.example/app:0")])})}
	policy.keys == ["[ns=team-a]r.example/app:1"] with input as i
}

test_audit_uses_object_namespace_and_no_old if {
	obj := pod([ctr("app", "r.example/unsigned:1")])
	policy.keys == ["[ns=team-a]r.example/unsigned:1"] with input as audit(obj)
	count(policy.violation) == 1 with input as audit(obj) with external_data as some_unsigned
}

test_namespace_falls_back_to_object_metadata if {
	i := {"review": {"kind": {"kind": "Pod"}, "object": pod([ctr("app", "r.example/app:1")])}}
	policy.keys == ["[ns=team-a]r.example/app:1"] with input as i
}

test_no_namespace_no_old_sends_plain_image if {
	obj := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [ctr("app", "[::1]:5000/app:1")]}}
	i := {"review": {"kind": {"kind": "Pod"}, "object": obj}}
	policy.keys == ["[::1]:5000/app:1"] with input as i
}

test_delete_has_nothing_to_check if {
	i := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "namespace": "team-a", "oldObject": pod([ctr("app", "r.example/unsigned:1")])}}
	count(policy.violation) == 0 with input as i with external_data as never_called
}
