package yamlalias

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want string // "" = no error
	}{
		{"no aliases", "a: 1\nb: [x, y]\n", ""},
		{"anchor without alias", "a: &x 1\nb: 2\n", ""},
		{"empty", "", ""},
		{"malformed is left to the caller", "a: [1\n", ""},
		{"one alias", "a: &x 1\nb: *x\n", "f.yaml:2:4: YAML alias *x is not allowed; write the value out in full"},
		{"merge key", "base: &b {k: 1}\nother:\n  <<: *b\n", "f.yaml:3:7: YAML alias *b is not allowed"},
		{"several", "a: &x [1]\nb: [*x, *x, *x]\n", "f.yaml:2:5: YAML alias *x is not allowed (and 2 more in this file)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Check("f.yaml", []byte(tc.doc))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want prefix %q", err, tc.want)
			}
		})
	}
}
