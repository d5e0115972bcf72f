//go:build tools

// Package tools pins the hydra command so that go.sum covers it.
package tools

import _ "github.com/ory/hydra/v2"
