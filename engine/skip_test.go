package engine

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
)

// TestSkippingIsExact checks that the shortcuts taken without explain
// (rules that cannot fill the requested placements, failed context guards)
// never change a decision: over the demo customers and a spread of
// contexts, decisions with and without explain agree.
func TestSkippingIsExact(t *testing.T) {
	store, err := features.OpenJSONL("../configs/demo/customers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}, store, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rs := e.Ruleset()
	var placements []PlacementRequest
	for _, p := range rs.Placements {
		if p.Bandit == nil { // a bandit draws anew on every decision
			placements = append(placements, PlacementRequest{ID: p.ID})
		}
	}
	channels := []string{"web", "app", "email", "sms", "store"}
	pages := []string{"/", "/cart", "/checkout", "/product/123", "/account"}
	ctx := context.Background()
	var plain, explained Decision
	for c := 1; c <= 3000; c += 7 {
		id := fmt.Sprintf("c-%06d", c)
		for i, ch := range channels {
			req := Request{CustomerID: id, Context: []ContextField{
				{Name: "channel", Value: features.String(ch)},
				{Name: "page", Value: features.String(pages[(c+i)%len(pages)])},
			}}
			// One placement at a time and all together: the placement
			// filter must hold for both.
			for _, ps := range [][]PlacementRequest{placements[c%len(placements) : c%len(placements)+1], placements} {
				req.Placements = ps
				req.Explain = false
				if err := e.Decide(ctx, &req, &plain); err != nil {
					t.Fatal(err)
				}
				a := summary(&plain)
				req.Explain = true
				if err := e.Decide(ctx, &req, &explained); err != nil {
					t.Fatal(err)
				}
				if b := summary(&explained); !slices.Equal(a, b) {
					t.Fatalf("%s on %s: without explain %v, with explain %v", id, ch, a, b)
				}
			}
		}
	}
}

func summary(d *Decision) []string {
	var out []string
	for _, p := range d.Placements {
		for _, it := range p.Items {
			out = append(out, fmt.Sprintf("%s:%s:%s:%g:%s", p.ID, it.Touchpoint, it.Rule, it.Score, it.Content))
		}
	}
	return out
}
