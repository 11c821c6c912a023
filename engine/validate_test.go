package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/features"
)

// A misspelt placement, context field or context value is answered with the
// likely intended name, as rules check does for rule files.
func TestRequestErrorsSuggest(t *testing.T) {
	e := newTestEngine(t, "")
	cart := []PlacementRequest{{ID: "cart_banner"}}
	cases := []struct {
		name string
		req  Request
		want string // in the message
	}{
		{"placement", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "cart_baner"}}, Context: web("/")},
			`placement "cart_baner" is not configured (did you mean cart_banner?)`},
		{"context field", Request{CustomerID: "c", Placements: cart, Context: append(web("/"), ContextField{Name: "pgae", Value: features.String("/")})},
			`context field "pgae" is not declared in the feature schema (did you mean page?)`},
		{"context value", Request{CustomerID: "c", Placements: cart, Context: []ContextField{{Name: "channel", Value: features.String("emial")}}},
			`context.channel must be one of web, app, email, got "emial" (did you mean email?)`},
		{"nothing close", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "sidebar_skyscraper"}}, Context: web("/")},
			`placement "sidebar_skyscraper" is not configured`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decision
			err := e.Decide(context.Background(), &tc.req, &d)
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RequestError", err)
			}
			if !strings.HasSuffix(re.Message, tc.want) {
				t.Errorf("message = %q, want it to end with %q", re.Message, tc.want)
			}
		})
	}
}
