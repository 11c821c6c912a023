// Package api holds the OpenAPI 3.1 description of Touchpoint's HTTP API
// (api/openapi.yaml), which the server serves at /openapi.yaml and a test
// checks real requests and answers against.
package api

import _ "embed"

//go:embed openapi.yaml
var document []byte

// Document returns the OpenAPI document as YAML. It is shared: callers
// must not modify it.
func Document() []byte { return document }
