package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzCompile feeds arbitrary rule files to the compiler: whatever a
// marketer saves must produce a ruleset or errors, never a panic.
func FuzzCompile(f *testing.F) {
	for _, dir := range []string{"testdata/good/rules", "testdata/broken/rules", "../configs/rules"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("rules:\n  - id: r\n    when: segment(\"a\")\n    offer: [t]\n"))
	f.Add([]byte("touchpoints:\n  - id: t\n    kind: offer\n    content: {a: \"{{ customer.ltv | default \\\"x\\\" | upper }}\"}\n"))
	// Models, attributes, model() and arbitration formulas.
	f.Add([]byte("models:\n  - id: m\n    type: logistic\n    inputs: {d: touchpoint.d, s: customer.first_name}\n    intercept: 1\n" +
		"    terms:\n      - {input: d, weight: 0.1, log1p: true, mean: 1, std: 2}\n      - {input: s, one_hot: {a: 1}}\n" +
		"      - {input: ltv, buckets: {bounds: [1, 2], weights: [0, 1, 2]}}\n    tests:\n      - {touchpoint: t, expect_score: 0.5}\n" +
		"placements:\n  - id: p\n    arbitration: {score: propensity * value * lever + score}\n" +
		"touchpoints:\n  - id: t\n    kind: offer\n    attributes: {d: 3, c: x}\n    propensity: m\n    lever: 2\n    value: customer.ltv * touchpoint.d\n" +
		"rules:\n  - id: r\n    when: model(\"m\") > 0.5 && touchpoint.c == \"x\"\n    score: model(\"m\")\n    offer: [t]\n"))
	schemaData, err := os.ReadFile("testdata/good/features.yaml")
	if err != nil {
		f.Fatal(err)
	}
	schema, err := ParseSchema("features.yaml", schemaData)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Compile(schema, []string{"r.yaml"}, map[string][]byte{"r.yaml": data})
		if err == nil && rs == nil {
			t.Fatal("no ruleset and no error")
		}
		if err != nil {
			_ = err.Error()
		}
	})
}

// FuzzParseSchema does the same for the feature schema.
func FuzzParseSchema(f *testing.F) {
	for _, p := range []string{"testdata/good/features.yaml", "../configs/features.yaml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("customer:\n  x: {type: list, default: [a, b]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSchema("features.yaml", data)
		if err == nil && s == nil {
			t.Fatal("no schema and no error")
		}
		if err == nil {
			newEnvLayout(s)
		}
	})
}
