//go:build !linux

package loadtest

import (
	"context"
	"time"
)

func newTicker(ctx context.Context, clk clock, first, period time.Duration) ticker {
	return newRuntimeTicker(ctx, clk, first, period)
}
