//go:build tools

// Package tools pins the skaffold command so that go.sum covers it.
package tools

import _ "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
