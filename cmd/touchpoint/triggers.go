package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/decisionlog"
	"github.com/touchpoint-dev/touchpoint/delivery"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features/redisstore"
	"github.com/touchpoint-dev/touchpoint/rules"
	"github.com/touchpoint-dev/touchpoint/server"
	"github.com/touchpoint-dev/touchpoint/triggers"
)

// deadLetterStream is where, with Redis, webhook messages no retry could
// deliver are kept for an operator.
const deadLetterStream = "tp:triggers:dead"

// triggerSetup is a serving node's triggers: the runner, and what the
// server reports of it.
type triggerSetup struct {
	runner *triggers.Runner
	stats  func() server.TriggerStats
}

// setupTriggers builds the trigger runner: the shared queue in Redis (or
// in process on the embedded store), deliveries made from the rules as
// they are loaded (standard output for every one with toStdout), and
// dead letters in a Redis stream or, on the embedded store, the log.
func setupTriggers(cfg config, eng *engine.Engine, redis *redisstore.Store, dlog *decisionlog.Logger, stdout io.Writer, toStdout bool, log zerolog.Logger) (*triggerSetup, error) {
	if err := cfg.Triggers.Validate(); err != nil {
		return nil, err
	}
	if !toStdout {
		if err := eng.Ruleset().CheckSecrets(os.Getenv); err != nil {
			return nil, fmt.Errorf("cannot start: %w (or serve with --deliver-stdout to print what would be sent)", err)
		}
	}
	var queue triggers.Queue = triggers.NewMemoryQueue()
	if redis != nil {
		queue = redis.TriggerQueue("default")
	}
	dead := delivery.DeadLettersFunc(func(ctx context.Context, id string, body []byte, reason string) error {
		log.Error().Str("component", "triggers").Str("firing", id).Str("reason", reason).Msg("a triggered message could not be delivered and is dead-lettered")
		if redis == nil {
			return nil
		}
		return redis.AppendStream(ctx, deadLetterStream, 1_000_000, "message", [][]byte{body})
	})
	var mu sync.Mutex
	var webhooks []*delivery.Webhook
	printer := delivery.NewWriter(stdout)
	deliverers := func(d rules.Delivery) (delivery.Deliverer, error) {
		switch {
		case toStdout:
			return printer, nil
		case d.Webhook != nil:
			wc := delivery.DefaultWebhookConfig()
			wc.URL, wc.Timeout, wc.Secret = d.Webhook.URL, d.Webhook.Timeout, delivery.Secret(os.Getenv(d.Webhook.SecretEnv))
			if d.Webhook.MaxAttempts > 0 {
				wc.MaxAttempts = d.Webhook.MaxAttempts
			}
			if d.Webhook.BackoffMax > 0 {
				wc.BackoffMax = d.Webhook.BackoffMax
				wc.BackoffBase = min(wc.BackoffBase, wc.BackoffMax)
			}
			// A firing whose delivery outlasts its lease comes due on
			// another node while this one still retries.
			if longest := wc.MaxDuration(); longest > cfg.Triggers.Lease {
				return nil, fmt.Errorf("its retries can take %s, longer than triggers.lease (%s); raise the lease or shorten the timeout", longest, cfg.Triggers.Lease)
			}
			w, err := delivery.NewWebhook(wc, dead)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			webhooks = append(webhooks, w)
			mu.Unlock()
			return w, nil
		case d.Stream != nil && redis != nil:
			s := d.Stream
			return streamDeliverer(func(ctx context.Context, body []byte) error {
				return redis.AppendStream(ctx, s.Stream, s.MaxLen, "message", [][]byte{body})
			}), nil
		}
		// Without Redis a stream delivery fails when it is used, as a
		// firing's failure, not at start.
		return streamDeliverer(func(context.Context, []byte) error {
			return errors.New("a redis_stream delivery needs Redis (redis.url)")
		}), nil
	}
	var opts []triggers.Option
	if dlog != nil {
		opts = append(opts, triggers.WithDecisionLog(dlog))
	}
	r := triggers.New(cfg.Triggers, queue, eng, deliverers, log, opts...)
	if err := r.Prepare(); err != nil {
		return nil, fmt.Errorf("cannot start: %w", err)
	}
	stats := func() server.TriggerStats {
		st := r.Stats()
		out := server.TriggerStats{Pending: -1, Scheduled: st.Scheduled, Cancelled: st.Cancelled, Fired: st.Fired,
			Delivered: st.Delivered, Failed: st.Failed, Deferred: st.Deferred, ScheduleFailures: st.ScheduleFailures, Held: st.Held}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if n, err := r.Pending(ctx); err == nil {
			out.Pending = n
		}
		mu.Lock()
		for _, w := range webhooks {
			ws := w.Stats()
			out.Retries += ws.Retries
			out.DeadLettered += ws.DeadLettered
		}
		mu.Unlock()
		return out
	}
	return &triggerSetup{runner: r, stats: stats}, nil
}

// streamDeliverer adds each message to a Redis stream; the stream keeps
// it for whoever sends.
type streamDeliverer func(ctx context.Context, body []byte) error

func (f streamDeliverer) Deliver(ctx context.Context, _ string, body []byte) error {
	return f(ctx, body)
}
