# SigpinVerifiedImages: every container image of a Pod or pod template must be verified by sigpin.
#
# Source of truth for the Rego embedded in ../template/constrainttemplate.yaml (Rego v1 syntax, run by Gatekeeper
# through `code: [{engine: Rego, source: {version: v1}}]`). test/gatekeeper/policies.test.ts checks the copy.
#
# One batched external_data call per review. Keys carry context in a prefix (DESIGN.md section 3):
#   [ns=<namespace>,old=<old image>]<image>
# `old=` is the image of the old object's container of the same name (UPDATE only), so sigpin can answer
# "unchanged" without fetching signatures when the tag still resolves to the digest that already runs.
# Fails closed: denies on system_error, on item errors, on keys the provider did not answer, on answers that are
# not verdicts, and when external_data gave no reply at all. Never looks at status_code (0 when cached).
package sigpinverifiedimages

default_provider := "sigpin-verify"

# Kinds whose pod spec sits at spec.template.spec.
template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

container_lists := ["containers", "initContainers", "ephemeralContainers"]

provider := p if {
	p := input.parameters.provider
	is_string(p)
	p != ""
} else := default_provider

pods_only if input.parameters.podsOnly == true

kind := k if {
	k := input.review.kind.kind
	is_string(k)
	k != ""
} else := input.review.object.kind

# The pod spec of an object of the given kind; undefined for other kinds (and for workloads when podsOnly).
pod_spec(k, obj) := obj.spec if k == "Pod"

pod_spec(k, obj) := obj.spec.template.spec if {
	k in template_kinds
	not pods_only
}

pod_spec(k, obj) := obj.spec.jobTemplate.spec.template.spec if {
	k == "CronJob"
	not pods_only
}

# The admission request's namespace; in audit, the object's own.
namespace := ns if {
	ns := input.review.namespace
	is_string(ns)
	ns != ""
} else := ns if {
	ns := input.review.object.metadata.namespace
	is_string(ns)
	ns != ""
} else := ""

# Exempt images: globs over the image string as written, `*` within one path component, `**` across them.
exempt(image) if {
	some pattern in input.parameters.exemptImages
	glob.match(pattern, ["/"], image)
}

# The image of the old object's container with this name in the same list, on UPDATE only (so never in audit).
# Only a pinned old image (name@digest) can prove "unchanged", so an unpinned one is left out: the key then equals
# the CREATE key and can be served from Gatekeeper's cache. An old image with "]" (an IPv6 registry host) is left
# out too: the prefix ends at its first "]", so it cannot carry one; such a container is simply verified again.
old_image(list, name) := img if {
	input.review.operation == "UPDATE"
	old_spec := pod_spec(kind, input.review.oldObject)
	images := {i |
		some c in old_spec[list]
		c.name == name
		i := c.image
		is_string(i)
		i != ""
	}
	count(images) == 1
	some img in images
	contains(img, "@")
	not contains(img, "]")
}

prefix_parts(list, name) := array.concat(ns_part, old_part) if {
	ns_part := [sprintf("ns=%s", [namespace]) | namespace != ""]
	old_part := [sprintf("old=%s", [i]) | i := old_image(list, name)]
}

key_for(list, name, image) := sprintf("[%s]%s", [concat(",", parts), image]) if {
	parts := prefix_parts(list, name)
	count(parts) > 0
} else := image

# One record per container under review.
containers contains c if {
	spec := pod_spec(kind, input.review.object)
	some list in container_lists
	some ctr in spec[list]
	image := ctr.image
	is_string(image)
	image != ""
	not exempt(image)
	name := object.get(ctr, "name", "")
	c := {"list": list, "name": name, "image": image, "key": key_for(list, name, image)}
}

# Distinct keys, sorted: the one batch sent to the provider.
keys := sort({c.key | some c in containers})

reply := external_data({"provider": provider, "keys": keys}) if count(keys) > 0

# Defined only when external_data answered with an object. `not has_reply` is true when the reply is undefined
# (a builtin error); `not is_object(reply)` would not be, as Rego evaluates the argument outside the negation.
has_reply if is_object(reply)

system_error := e if {
	e := reply.system_error
	e != ""
}

answered contains pair[0] if some pair in reply.responses

answered contains pair[0] if some pair in reply.errors

# A verify answer is a verdict object carrying the digest that was checked.
verdict(v) if {
	is_object(v)
	is_string(v.digest)
}

label(c) := sprintf("%s[%s] image %q", [c.list, c.name, c.image])

violation contains {"msg": msg, "details": {"provider": provider}} if {
	count(keys) > 0
	not has_reply
	msg := sprintf("sigpin: no reply from external data provider %q; %d image(s) not verified", [provider, count(keys)])
}

violation contains {"msg": msg, "details": {"provider": provider, "systemError": system_error}} if {
	msg := sprintf("sigpin: image verification unavailable (%s); %d image(s) not verified", [system_error, count(keys)])
}

violation contains {"msg": msg, "details": {"key": c.key, "error": e}} if {
	some c in containers
	some pair in reply.errors
	pair[0] == c.key
	e := pair[1]
	msg := sprintf("sigpin: %s rejected: %v", [label(c), e])
}

violation contains {"msg": msg, "details": {"key": c.key}} if {
	has_reply
	not system_error
	some c in containers
	not c.key in answered
	msg := sprintf("sigpin: %s: no answer from provider %q", [label(c), provider])
}

violation contains {"msg": msg, "details": {"key": c.key, "value": v}} if {
	some c in containers
	some pair in reply.responses
	pair[0] == c.key
	v := pair[1]
	not verdict(v)
	msg := sprintf("sigpin: %s: provider %q answered %v, not a verdict (does it point at /gatekeeper/v1/verify?)", [label(c), provider, v])
}
