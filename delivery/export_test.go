package delivery

import (
	"context"
	"time"
)

// Hooks for the external tests.

func WithWait(wait func(ctx context.Context, d time.Duration) error) WebhookOption {
	return withWait(wait)
}

func WithClock(now func() time.Time) WebhookOption { return withClock(now) }

func BackoffCap(c WebhookConfig, n int) time.Duration { return c.backoffCap(n) }
