//go:build tools

// Package tools pins the Prometheus module; the binary is built with
// `go build github.com/prometheus/prometheus/cmd/promtool`. Prometheus' go.mod carries `exclude`
// directives, so `go install github.com/prometheus/prometheus/cmd/promtool@version` refuses it.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
