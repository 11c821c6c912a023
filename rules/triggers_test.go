package rules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const triggerRules = `placements:
  - id: email_slot
touchpoints:
  - id: reminder
    kind: message
    placements: [email_slot]
deliveries:
  - id: crm
    webhook: {url: "https://crm.example.com/hooks/touchpoint", secret_env: TP_TEST_SECRET, timeout: 3s}
  - id: stream
    redis_stream: {stream: "tp:outbound", maxlen: 1000}
triggers:
  - id: cart_abandon_email
    on: cart_updated
    when: customer.cart_value >= 30
    delay: 2h
    unless: [checkout_completed]
    placement: email_slot
    channel: email
    deliver: crm
`

func triggerSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := ParseSchema("f.yaml", []byte(eventsSchema+"context:\n  channel: {type: string, values: [web, email]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTriggers(t *testing.T) {
	rs, err := Compile(triggerSchema(t), []string{"t.yaml"}, map[string][]byte{"t.yaml": []byte(triggerRules)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Triggers) != 1 || len(rs.Deliveries) != 2 {
		t.Fatalf("%d triggers, %d deliveries", len(rs.Triggers), len(rs.Deliveries))
	}
	tr := rs.Triggers[0]
	if tr.On != "cart_updated" || tr.Delay != 2*time.Hour || tr.When == nil || tr.Channel != "email" ||
		rs.Placements[tr.Placement].ID != "email_slot" || rs.Deliveries[tr.Deliver].ID != "crm" || tr.Line != 13 {
		t.Errorf("trigger = %+v", tr)
	}
	if w := rs.Deliveries[0].Webhook; w == nil || w.Timeout != 3*time.Second || w.SecretEnv != "TP_TEST_SECRET" {
		t.Errorf("webhook = %+v", w)
	}
	if s := rs.Deliveries[1].Stream; s == nil || s.Stream != "tp:outbound" || s.MaxLen != 1000 {
		t.Errorf("stream = %+v", s)
	}
	starts, cancels := rs.TriggersOn("cart_updated")
	if len(starts) != 1 || len(cancels) != 0 {
		t.Errorf("cart_updated starts %v, cancels %v", starts, cancels)
	}
	if _, cancels := rs.TriggersOn("checkout_completed"); len(cancels) != 1 {
		t.Errorf("checkout_completed cancels %v", cancels)
	}
	if err := rs.CheckSecrets(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "TP_TEST_SECRET") {
		t.Errorf("a missing secret: %v", err)
	}
	if err := rs.CheckSecrets(func(string) string { return strings.Repeat("s", 16) }); err != nil {
		t.Errorf("a secret of 16 bytes: %v", err)
	}
}

func TestTriggerErrors(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown event", "on: cart_updated", "on: cart_update", "did you mean cart_updated"},
		{"unknown unless", "unless: [checkout_completed]", "unless: [checkout]", "not an event"},
		{"starts and cancels", "unless: [checkout_completed]", "unless: [cart_updated]", "both starts and cancels"},
		{"bad delay", "delay: 2h", "delay: 2 hours", "delay must be a duration"},
		{"long delay", "delay: 2h", "delay: 800h", "30 days"},
		{"unknown placement", "placement: email_slot", "placement: email_slt", "did you mean email_slot"},
		{"bad channel", "channel: email", "channel: fax", "must be one of web, email"},
		{"unknown delivery", "deliver: crm", "deliver: crn", "did you mean crm"},
		{"bad when", "when: customer.cart_value >= 30", "when: customer.cart_valeu >= 30", "did you mean cart_value"},
		{"no on", "    on: cart_updated\n", "", "needs on"},
		{"http url", "https://crm.example.com/hooks/touchpoint", "ftp://crm.example.com/x", "absolute http or https"},
		{"two kinds", "redis_stream: {stream: \"tp:outbound\", maxlen: 1000}", "redis_stream: {stream: x}\n    webhook: {url: \"http://a.b/c\", secret_env: X}", "exactly one of"},
		{"unknown key", "delay: 2h", "dealy: 2h", "did you mean delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(triggerRules, tc.from, tc.to, 1)
			if src == triggerRules {
				t.Fatalf("%q is not in the rules", tc.from)
			}
			_, err := Compile(triggerSchema(t), []string{"t.yaml"}, map[string][]byte{"t.yaml": []byte(src)})
			var list ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
