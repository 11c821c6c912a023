// Package delivery hands triggered touchpoints to the systems that send
// them: a webhook (signed, retried with backoff, dead-lettered after the
// last try), or standard output for the demo. A message is opaque bytes
// with an id; the receiver deduplicates by id, since a firing may be
// delivered more than once when a node dies between sending and
// recording it.
package delivery

import "context"

// Deliverer sends one message.
type Deliverer interface {
	// Deliver sends body, identified by id, until it is accepted or no
	// retry is left; an error means it was not accepted (and, for a
	// webhook, was dead-lettered).
	Deliver(ctx context.Context, id string, body []byte) error
}

// DeadLetters keeps messages no retry could deliver, for an operator to
// look at and replay.
type DeadLetters interface {
	DeadLetter(ctx context.Context, id string, body []byte, reason string) error
}

// DeadLettersFunc adapts a function to DeadLetters, for a caller whose
// sink is a log line or a closure over its store.
type DeadLettersFunc func(ctx context.Context, id string, body []byte, reason string) error

// DeadLetter calls f.
func (f DeadLettersFunc) DeadLetter(ctx context.Context, id string, body []byte, reason string) error {
	return f(ctx, id, body, reason)
}
