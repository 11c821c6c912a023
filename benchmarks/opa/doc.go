// Package opabench compares Touchpoint's rule evaluation with Open Policy
// Agent's Rego, evaluated in-process, on the same slice of the demo rules
// and the same inputs. It is its own module so that OPA's dependencies stay
// out of Touchpoint's; run it with `make bench-opa`. It has no non-test
// code.
package opabench
