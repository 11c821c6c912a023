// Package triggers sends touchpoints when something happens rather than
// when a page asks: a behavioural event starts a trigger's delay, events
// named in its unless list cancel it, and when it falls due one node
// claims it, decides the trigger's placement with the full rules and
// contact policy, and hands what was decided to the trigger's delivery.
// Pending firings live in a Queue: in process for the embedded store, in
// Redis for many nodes.
package triggers

import (
	"context"
	"time"
)

// Queue holds pending firings by key (trigger id and customer id, see
// Key), each due at a time. It is shared by every node that serves the
// same customers: a due firing is claimed by one of them, leased for a
// while, and comes due again if the claimant neither finishes nor defers
// it by then, so a node that dies mid-firing delays it, never loses it.
type Queue interface {
	// Schedule sets key's firing to due, replacing any pending one: the
	// last event counts. A firing being claimed meanwhile is not affected.
	Schedule(ctx context.Context, key string, due time.Time) error
	// Cancel removes key's pending firing, if any.
	Cancel(ctx context.Context, key string) error
	// Claim takes up to n firings due at now, each leased until now+lease.
	// Firings whose lease ran out come due again first.
	Claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]Claim, error)
	// Done ends a claim: the firing was handled. It does nothing once
	// the lease has passed to another claimant.
	Done(ctx context.Context, c Claim) error
	// Defer ends a claim by scheduling the firing again at due (quiet
	// hours), unless a newer firing of the key was scheduled meanwhile.
	Defer(ctx context.Context, c Claim, due time.Time) error
	// Pending counts firings waiting or claimed.
	Pending(ctx context.Context) (int64, error)
}

// Claim is one firing a node holds.
type Claim struct {
	Key string
	// Due is when it was due; with Key it names the firing (FiringID).
	Due time.Time
	// Token tells this claim from a later claim of the same firing.
	Token string
}

// Key is the queue key of a trigger's firing for a customer.
func Key(trigger, customerID string) string { return trigger + "|" + customerID }
