package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/features"
)

const eventsSchema = `customer:
  cart_value: {type: number}
  cart_items: {type: number}
  orders_total: {type: number, default: 0}
  emotion: {type: string, default: neutral, values: [neutral, happy, angry]}
  open_complaint: {type: bool}
events:
  cart_updated: {description: The cart changed, properties: {value: number, items: number}}
  checkout_completed: {properties: {value: number}}
  complaint_opened: {properties: {emotion: string}}
counters:
  days_since_cart_update: {event: cart_updated, last_seen: true}
on:
  cart_updated:
    set: {cart_value: properties.value, cart_items: properties.items}
  checkout_completed:
    set: {cart_value: 0}
    increment: {orders_total: 1}
  complaint_opened:
    set: {open_complaint: true, emotion: properties.emotion}
`

func TestSchemaEvents(t *testing.T) {
	s, err := ParseSchema("f.yaml", []byte(eventsSchema))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.EventNames(), ","); got != "cart_updated,checkout_completed,complaint_opened" {
		t.Fatalf("events = %s", got)
	}
	cart := &s.Events[s.Event("cart_updated")]
	if cart.Description != "The cart changed" || len(cart.Properties) != 2 || cart.Property("items") != 0 || cart.Property("value") != 1 || cart.Property("nope") != -1 {
		t.Errorf("cart_updated = %+v", cart)
	}
	if len(cart.Updates) != 2 || cart.Updates[0].Property < 0 || cart.Updates[0].Op != features.UpdateSet {
		t.Errorf("cart_updated updates = %+v", cart.Updates)
	}
	checkout := &s.Events[s.Event("checkout_completed")]
	var add *EventUpdate
	for i := range checkout.Updates {
		if checkout.Updates[i].Op == features.UpdateAdd {
			add = &checkout.Updates[i]
		}
	}
	if add == nil || s.Customer[add.Feature].Name != "orders_total" || add.Property != -1 || add.Const.Num != 1 {
		t.Errorf("checkout_completed updates = %+v", checkout.Updates)
	}
	if c := s.Customer[s.CustomerField("days_since_cart_update")].Counter; c == nil || c.Event != "cart_updated" {
		t.Errorf("a counter of a behavioural event = %+v", c)
	}
	if s.Event("nope") != -1 {
		t.Error("an undeclared event was found")
	}
}

func TestSchemaEventErrors(t *testing.T) {
	base := "customer:\n  cart_value: {type: number}\n  tier: {type: string, values: [gold, silver]}\n  tags: {type: list}\n"
	for _, tc := range []struct{ name, schema, want string }{
		{"feedback name", "events:\n  click: {}\n", "feedback event type"},
		{"track name", "events:\n  track: {}\n", "feedback event type"},
		{"bad name", "events:\n  cart-updated: {}\n", "must start with a letter"},
		{"long name", "events:\n  " + strings.Repeat("a", 33) + ": {}\n", "at most 32 bytes"},
		{"bad property type", "events:\n  e: {properties: {v: decimal}}\n", `unknown type "decimal"`},
		{"unknown key", "events:\n  e: {props: {}}\n", `unknown key "props"`},
		{"on an undeclared event", "events:\n  cart_updated: {}\non:\n  cart_update: {set: {cart_value: 1}}\n", "did you mean cart_updated"},
		{"unknown feature", "events:\n  e: {}\non:\n  e: {set: {cart_valeu: 1}}\n", "did you mean cart_value"},
		{"unknown property", "events:\n  e: {properties: {value: number}}\non:\n  e: {set: {cart_value: properties.valeu}}\n", "did you mean value"},
		{"property type", "events:\n  e: {properties: {value: string}}\non:\n  e: {set: {cart_value: properties.value}}\n", "is a string and cart_value a number"},
		{"constant type", "events:\n  e: {}\non:\n  e: {set: {cart_value: lots}}\n", "cart_value"},
		{"constant not allowed", "events:\n  e: {}\non:\n  e: {set: {tier: bronze}}\n", "must be one of gold, silver"},
		{"increment a string", "events:\n  e: {}\non:\n  e: {increment: {tier: 1}}\n", "increment needs a number feature"},
		{"twice", "events:\n  e: {}\non:\n  e: {set: {cart_value: 1}, increment: {cart_value: 1}}\n", "twice"},
		{"a counter", "events:\n  e: {}\ncounters:\n  n: {event: e, days: 7}\non:\n  e: {set: {n: 1}}\n", "is a counter"},
		{"counter of an unknown event", "counters:\n  n: {event: cart_updated, days: 7}\n", "events section"},
		{"counter by touchpoint", "events:\n  e: {}\ncounters:\n  n: {event: e, touchpoint: t, days: 7}\n", "about no touchpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSchema("f.yaml", []byte(base+tc.schema))
			var list ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSchema = %v, want an error with %q", err, tc.want)
			}
			if list[0].Line == 0 {
				t.Errorf("the error has no line: %v", list[0])
			}
		})
	}
}
