// Package benchmarks holds cross-package benchmarks that compare the whole
// Touchpoint decision path with a bare fasthttp handler in the same run, so
// results read as ratios on shared, noisy machines. It has no non-test code.
package benchmarks
