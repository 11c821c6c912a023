package server

import (
	"strings"
	"testing"
)

func TestIDRule(t *testing.T) {
	tests := []struct {
		id      string
		problem string // "" when the id is fine, else part of the answer
	}{
		{"c-000042", ""},
		{"a", ""},
		{strings.Repeat("x", 256), ""},
		{"Zoë Müller", ""},
		{"shop/c-1?x=%2F#", ""},
		{"客户-42", ""},
		{"😀", ""},
		{"...", ""},
		{".a", ""},
		{"", "empty"},
		{strings.Repeat("x", 257), "at most 256 bytes"},
		{" c-1", "space"},
		{"c-1 ", "space"},
		{"c-1\t", "control character U+0009"},
		{"c\x00", "control character U+0000"},
		{"c\x7f", "control character U+007F"},
		{"c\u0085", "printable"},          // C1 control (next line)
		{"c\u00a0d", "printable"},         // no-break space
		{"c\u200bd", "printable"},         // zero-width space
		{"c\u202ed", "printable"},         // right-to-left override
		{"c\u2028d", "printable"},         // line separator
		{"c\ufeffd", "printable"},         // byte order mark
		{"c-\xff", "valid UTF-8"},         // not UTF-8 at all
		{"c-\xc3", "valid UTF-8"},         // truncated sequence
		{"c-\xed\xa0\x80", "valid UTF-8"}, // a surrogate, encoded
		{".", `"." or ".."`},
		{"..", `"." or ".."`},
	}
	for _, tc := range tests {
		got := idProblem([]byte(tc.id), maxIDBytes)
		switch {
		case tc.problem == "" && got != "":
			t.Errorf("idProblem(%q) = %q, want the id accepted", tc.id, got)
		case tc.problem != "" && !strings.Contains(got, tc.problem):
			t.Errorf("idProblem(%q) = %q, want it to mention %q", tc.id, got, tc.problem)
		}
	}
}

func TestPathID(t *testing.T) {
	tests := []struct {
		raw, id, problem string
	}{
		{"c-000042", "c-000042", ""},
		{"c-000777%2F..%2Fc-000101", "c-000777/../c-000101", ""},
		{"c-1%252F", "c-1%2F", ""},
		{"Zo%c3%ab%20M", "Zoë M", ""},
		{"a+b", "a+b", ""},
		{"%zz", "", "percent-escape at byte 0"},
		{"c-1%", "", "percent-escape at byte 3"},
		{"c-1%4", "", "percent-escape at byte 3"},
		{"%2e%2e", "", `"." or ".."`},
		{"c%00", "", "control character"},
		{"", "", "empty"},
	}
	for _, tc := range tests {
		id, problem := pathID([]byte(tc.raw))
		if id != tc.id || tc.problem == "" && problem != "" || !strings.Contains(problem, tc.problem) {
			t.Errorf("pathID(%q) = %q, %q; want %q, %q", tc.raw, id, problem, tc.id, tc.problem)
		}
	}
}

func BenchmarkIDRule(b *testing.B) {
	id := []byte("c-000042")
	b.ReportAllocs()
	for b.Loop() {
		if idProblem(id, maxIDBytes) != "" {
			b.Fatal("refused")
		}
	}
}
