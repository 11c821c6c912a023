package rules

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/features"
)

// Rendered content is written out by the server as is, so it must be valid
// JSON and HTML-safe for any text in the file and any customer value.
func TestContentIsHTMLSafe(t *testing.T) {
	schema, err := ParseSchema("f.yaml", []byte("customer:\n  name: {type: string}\n  tags: {type: list}\n  n: {type: number}\n"))
	if err != nil {
		t.Fatal(err)
	}
	file := "touchpoints:\n  - id: t\n    kind: offer\n    content:\n" +
		"      \"<k>&\": \"</script> & <b>{{ customer.name }}</b> {{ customer.name | upper }} {{ customer.tags }} {{ customer.n }}\u2028\"\n" +
		"      list: [\"<i>\", {a: \"{{ customer.name | default \\\"<x>\\\" }}\"}]\n"
	rs, err := Compile(schema, []string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	hostile := []string{"", "</script><script>alert(1)</script>", "a&b\"c\\d\u2028e\u2029f", "\x01\x7f\xff<>"}
	for _, name := range hostile {
		env := rs.NewEnv()
		env.SetCustomer(schema.CustomerField("name"), features.String(name))
		env.SetCustomer(schema.CustomerField("tags"), features.List(name, "<&>"))
		env.SetCustomer(schema.CustomerField("n"), features.Number(-1.5))
		out := rs.Touchpoints[0].Content.AppendJSON(nil, env)
		if !json.Valid(out) {
			t.Fatalf("%q: not JSON: %s", name, out)
		}
		if strings.ContainsAny(string(out), "<>&\u2028\u2029") {
			t.Errorf("%q: not HTML-safe: %s", name, out)
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		if name != "" && !strings.Contains(v["<k>&"].(string), strings.ToValidUTF8(name, "\uFFFD")) {
			t.Errorf("%q: the value is not in the content: %v", name, v)
		}
	}
}
