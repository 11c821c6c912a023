// Package benchmarks holds cross-package benchmarks; it has no non-test
// code.
//
//   - BenchmarkHTTP compares the full /v1/decide server with a bare fasthttp
//     handler under the same client in the same run, so results read as
//     ratios on shared, noisy machines.
//   - BenchmarkDecideRules and BenchmarkCompileRules measure Engine.Decide
//     and rules.Load on synthetic rulesets of 10 to 10,000 rules, generated
//     deterministically into a temporary directory against the demo feature
//     schema.
//   - BenchmarkArbitration isolates ranking by difference: rulesets that
//     cost the same to evaluate, with 5, 100 or 1,000 matching rules.
//   - BenchmarkCacheFootprint measures the heap a cached demo customer
//     keeps, and BenchmarkDecideEmbedded what a cache miss adds to a
//     decision on the embedded store.
//
// The module in opa/ compares the rules stage with OPA's Rego on the same
// rules and inputs. See README.md for how to run them and read the results.
package benchmarks
