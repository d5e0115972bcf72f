//go:build tools

// Package tools pins the traefik command so that go.sum covers it.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
