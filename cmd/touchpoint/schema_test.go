package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/internal/schematest"
)

// The demo configuration is valid against schemas/config.schema.json and
// names it for editors; a mistyped key or a wrong type is not valid.
func TestDemoConfigMatchesTheJSONSchema(t *testing.T) {
	s := schematest.Compile(t, "../../schemas/config.schema.json")
	asJSON := func(data []byte) any { return schematest.YAML(t, data) }
	data, err := os.ReadFile("../../configs/touchpoint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("# yaml-language-server: $schema=../schemas/config.schema.json\n")) {
		t.Error("configs/touchpoint.yaml does not start with the yaml-language-server line naming the schema")
	}
	if err := s.Validate(asJSON(data)); err != nil {
		t.Errorf("configs/touchpoint.yaml: %v", err)
	}
	for _, bad := range []string{"server:\n  adress: \":80\"\n", "rules:\n  decide_deadline: 100\n", "redis:\n  breaker: {failures: many}\n"} {
		if err := s.Validate(asJSON([]byte(bad))); err == nil {
			t.Errorf("the schema accepts:\n%s", bad)
		}
	}
}

// The schema has exactly the configuration's keys, at every level, so an
// editor completes what serve accepts.
func TestConfigSchemaKeysMatchTheConfig(t *testing.T) {
	raw, err := os.ReadFile("../../schemas/config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var check func(path string, typ reflect.Type, node map[string]any)
	check = func(path string, typ reflect.Type, node map[string]any) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() == "time" {
			return
		}
		fields := map[string]reflect.Type{}
		var collect func(reflect.Type)
		collect = func(t reflect.Type) {
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				tag := f.Tag.Get("yaml")
				name := strings.Split(tag, ",")[0]
				switch {
				case !f.IsExported() || tag == "-":
				case strings.Contains(tag, "inline"):
					collect(f.Type)
				case name != "":
					fields[name] = f.Type
				}
			}
		}
		collect(typ)
		props, _ := node["properties"].(map[string]any)
		var inSchema, inConfig []string
		for k := range props {
			inSchema = append(inSchema, k)
		}
		for k := range fields {
			inConfig = append(inConfig, k)
		}
		sort.Strings(inSchema)
		sort.Strings(inConfig)
		if !slices.Equal(inSchema, inConfig) {
			t.Errorf("%s: the schema has %v, the configuration %v", path, inSchema, inConfig)
		}
		if node["additionalProperties"] != false {
			t.Errorf("%s: the schema allows other keys, which serve refuses", path)
		}
		for name, ft := range fields {
			child, _ := props[name].(map[string]any)
			if items, ok := child["items"].(map[string]any); ok && ft.Kind() == reflect.Slice {
				check(path+"."+name+"[]", ft.Elem(), items)
				continue
			}
			if child != nil {
				check(path+"."+name, ft, child)
			}
		}
	}
	check("config", reflect.TypeOf(config{}), schema)
}
