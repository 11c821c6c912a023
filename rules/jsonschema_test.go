package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/internal/schematest"
)

const rulesSchemaPath = "../schemas/rules.schema.json"

// Every demo rule file is valid against the schema and names it for
// editors; a file with a mistyped key or a wrong kind is not.
func TestDemoRuleFilesMatchTheJSONSchema(t *testing.T) {
	s := schematest.Compile(t, rulesSchemaPath)
	files, err := filepath.Glob("../configs/rules/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("demo rule files: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("# yaml-language-server: $schema=../../schemas/rules.schema.json\n")) {
			t.Errorf("%s does not start with the yaml-language-server line naming the schema", f)
		}
		if err := s.Validate(schematest.YAML(t, data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, bad := range []string{
		"rules:\n  - id: r\n    whn: true\n    offer: [t]\n",
		"touchpoints:\n  - {id: t, kind: banner}\n",
		"placements:\n  - id: p\n    arbitration: {mode: thompson, min_share: 0.9}\n",
		"rules:\n  - {id: r, when: \"true\"}\n",
		"policy:\n  caps:\n    - {count: 3, per: 7 days}\n",
	} {
		if err := s.Validate(schematest.YAML(t, []byte(bad))); err == nil {
			t.Errorf("the schema accepts:\n%s", bad)
		}
	}
}

// The schema and the loader agree on the keys of every part of a rule
// file: an editor completes exactly what the loader accepts.
func TestJSONSchemaKeysMatchTheLoader(t *testing.T) {
	raw, err := os.ReadFile(rulesSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	// Where each part of a rule file is described, as a path of keys into
	// the schema document.
	where := map[string]string{
		"":                                    "",
		"placements[]":                        "$defs/placement",
		"placements[].arbitration (score)":    "$defs/scoreArbitration",
		"placements[].arbitration (thompson)": "$defs/thompsonArbitration",
		"placements[].arbitration.prior":      "$defs/thompsonArbitration/properties/prior",
		"touchpoints[]":                       "$defs/touchpoint",
		"touchpoints[].cap":                   "$defs/cap",
		"touchpoints[].budget":                "$defs/touchpoint/properties/budget",
		"rules[]":                             "$defs/rule",
		"rules[].cap":                         "$defs/cap",
		"rules[].active":                      "$defs/schedule",
		"rules[].tests[]":                     "$defs/fixture",
		"rules[].tests[].history[]":           "$defs/fixture/properties/history/items",
		"experiments[]":                       "$defs/experiment",
		"experiments[].active":                "$defs/schedule",
		"models[]":                            "$defs/model",
		"models[].terms[]":                    "$defs/model/properties/terms/items",
		"models[].terms[].buckets":            "$defs/model/properties/terms/items/properties/buckets",
		"models[].tests[]":                    "$defs/modelFixture",
		"policy":                              "$defs/policy",
		"policy.caps[]":                       "$defs/policy/properties/caps/items",
		"policy.quiet_hours":                  "$defs/policy/properties/quiet_hours",
		"policy.consent":                      "$defs/policy/properties/consent",
		"triggers[]":                          "$defs/trigger",
		"triggers[].tests[]":                  "$defs/triggerFixture",
		"triggers[].tests[].events[]":         "$defs/triggerFixture/properties/events/items",
		"deliveries[]":                        "$defs/delivery",
		"deliveries[].webhook":                "$defs/delivery/properties/webhook",
		"deliveries[].redis_stream":           "$defs/delivery/properties/redis_stream",
	}
	keys := KeysByPath()
	for path, loader := range keys {
		ptr, ok := where[path]
		if !ok {
			t.Errorf("the loader reads %q, which this test does not place in the schema", path)
			continue
		}
		node := any(schema)
		for _, part := range strings.Split(ptr, "/") {
			if part == "" {
				continue
			}
			m, _ := node.(map[string]any)
			node = m[part]
		}
		obj, _ := node.(map[string]any)
		props, _ := obj["properties"].(map[string]any)
		var inSchema []string
		for k := range props {
			inSchema = append(inSchema, k)
		}
		sort.Strings(inSchema)
		want := slices.Clone(loader)
		sort.Strings(want)
		if !slices.Equal(inSchema, want) {
			t.Errorf("%s: the schema (%s) has %v, the loader %v", path, ptr, inSchema, want)
		}
		if obj["additionalProperties"] != false {
			t.Errorf("%s: the schema (%s) allows other keys, which the loader refuses", path, ptr)
		}
	}
}
