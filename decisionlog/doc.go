// Package decisionlog owns the decision log: one JSON line per decision
// (or per sampled decision) recording what was decided and why — the
// decision id, time, node, ruleset version, customer id or its keyed hash,
// the request context, and every candidate each placement considered with
// its rule, score, reason and model output, and the chosen items'
// propensity — but never a feature value. It is what off-policy
// evaluation and the attribution of outcomes to decisions read.
//
// The request path only copies a decision into a preallocated slot of a
// bounded queue (Logger.Log): no encoding, no I/O, no allocation once
// warm, no waiting. A full queue drops the decision and counts it. One
// writer goroutine per Logger encodes the lines and writes them, in
// batches, to the sinks: a size- and age-rotated local file and a Redis
// Stream that many nodes feed. A failing sink is counted and logged (at
// most once per 10 s per sink) and never slows a decide.
// A chosen candidate shown as part of an A/B test also names its
// experiment and variant.
package decisionlog
