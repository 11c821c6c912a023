package rules

import (
	"slices"
	"testing"
)

func TestKinds(t *testing.T) {
	want := []string{"offer", "coupon", "message", "content"}
	if got := KindNames(); !slices.Equal(got, want) {
		t.Fatalf("KindNames() = %q, want %q", got, want)
	}
	for i, name := range want {
		k, ok := ParseKind(name)
		if !ok || int(k) != i || k.String() != name {
			t.Errorf("ParseKind(%q) = %d, %v; want %d, true", name, k, ok, i)
		}
	}
	for _, name := range []string{"", "Offer", "offers", "kind(0)"} {
		if k, ok := ParseKind(name); ok {
			t.Errorf("ParseKind(%q) = %v, true; want false", name, k)
		}
	}

	// A caller that changes the names it was given changes nothing else.
	names := KindNames()
	names[0] = "banner"
	if _, ok := ParseKind("banner"); ok {
		t.Error(`after changing a returned name, ParseKind("banner") succeeds`)
	}
	if got := KindNames()[0]; got != "offer" {
		t.Errorf("after changing a returned name, KindNames()[0] = %q", got)
	}
}
