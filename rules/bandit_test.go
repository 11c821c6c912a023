package rules

import (
	"strings"
	"testing"
)

func TestBanditPlacement(t *testing.T) {
	rs, err := compileModels(t, "placements:\n  - id: p\n    arbitration: {mode: thompson, reward: conversion, prior: {alpha: 2, beta: 50}, min_share: 0.1, by: customer.vip}\n  - id: q\n    arbitration: {mode: thompson}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := rs.Placements[0].Bandit
	if b == nil || b.Reward != "conversion" || b.PriorAlpha != 2 || b.PriorBeta != 50 || b.MinShare != 0.1 || b.ByName != "vip" || strings.Join(b.Segments, ",") != "false,true" {
		t.Errorf("bandit = %+v", b)
	}
	if d := rs.Placements[1].Bandit; d == nil || d.Reward != "click" || d.PriorAlpha != 1 || d.PriorBeta != 20 || d.MinShare != 0.05 || d.By != -1 {
		t.Errorf("defaults = %+v", d)
	}
}

// Mistakes in a bandit placement are load errors where they are written.
func TestBanditLoadErrors(t *testing.T) {
	pl := func(arb string) string { return "placements:\n  - id: p\n    arbitration: " + arb + "\n" }
	cases := []loadErrorCase{
		{"mode", pl("{mode: greedy}"), "r.yaml:3:25:", "mode must be score (the default) or thompson"},
		{"reward", pl("{mode: thompson, reward: purchase}"), "r.yaml:3:43:", "reward must be click or conversion"},
		{"prior", pl("{mode: thompson, prior: {alpha: 0}}"), "r.yaml:3:50:", "prior.alpha must be above 0"},
		{"min share", pl("{mode: thompson, min_share: 0.9}"), "r.yaml:3:46:", "min_share must be between 0 and 0.5"},
		{"by unknown", pl("{mode: thompson, by: customer.tierr}"), "r.yaml:3:39:", "did you mean tier?"},
		{"by free string", pl("{mode: thompson, by: customer.tier}"), "r.yaml:3:39:", "must be a bool or a string with at most 64 declared values"},
		{"by number", pl("{mode: thompson, by: customer.ltv}"), "r.yaml:3:39:", "must be a bool or a string"},
		{"unknown key", pl("{mode: thompson, score: value}"), "r.yaml:3:35:", `unknown key "score"`},
	}
	checkLoadErrors(t, cases)
}
