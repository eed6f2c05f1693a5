//go:build tools

// Package tools records the Kyverno CLI main package as a dependency of this module so that `go mod tidy` keeps
// every module it needs in go.mod/go.sum; it is never compiled (the `tools` build tag is never set).
// scripts/setup-kyverno.sh builds the binary with `go build github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno`.
package tools

import (
	_ "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno"
)
