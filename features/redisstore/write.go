package redisstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/touchpoint-dev/touchpoint/features"
)

// PutFeatures merges values into the customer's features, creating the
// customer if needed. A value of KindMissing deletes that feature. Every
// node's cache is told.
func (s *Store) PutFeatures(ctx context.Context, customerID string, values map[string]features.Value) error {
	if customerID == "" {
		return errors.New("cannot put features: customer id is empty")
	}
	if len(values) == 0 {
		return nil
	}
	args := make([]any, 3, 3+2*len(values))
	args[0], args[1] = s.cfg.InvalidationChannel, customerID
	deleted := 0
	for name, v := range values {
		if v.Kind == features.KindMissing {
			args = append(args, name)
			deleted++
		}
	}
	args[2] = deleted
	args, _, err := appendPairs(args, nil, maps.All(values))
	if err != nil {
		return fmt.Errorf("cannot put features of customer %q: %w", customerID, err)
	}
	keys := []string{keysFor(customerID).features()}
	if err := s.run(ctx, s.scripts.features, keys, args); err != nil {
		return fmt.Errorf("cannot put features of customer %q: %w", customerID, err)
	}
	return nil
}

// appendPairs appends a name and its JSON encoding to args for every value
// but missing ones. The encodings are slices of buf, which it returns grown,
// so a batch of customers shares a few large buffers rather than allocating
// a string per value.
func appendPairs(args []any, buf []byte, values iter.Seq2[string, features.Value]) ([]any, []byte, error) {
	for name, v := range values {
		if v.Kind == features.KindMissing {
			continue
		}
		if name == "" {
			return args, buf, errors.New("feature with an empty name")
		}
		start := len(buf)
		var err error
		if buf, err = appendValue(buf, v); err != nil {
			return args, buf, fmt.Errorf("feature %q: %w", name, err)
		}
		args = append(args, name, buf[start:len(buf):len(buf)])
	}
	return args, buf, nil
}

// PutConsent merges per-channel consent. For each channel the answer with
// the later time wins, so a delayed retry cannot undo a newer answer; a zero
// time means now. Times are kept to the second.
func (s *Store) PutConsent(ctx context.Context, customerID string, consent map[string]features.Consent) error {
	if customerID == "" {
		return errors.New("cannot put consent: customer id is empty")
	}
	if len(consent) == 0 {
		return nil
	}
	args := make([]any, 0, 2+3*len(consent))
	args = append(args, s.cfg.InvalidationChannel, customerID)
	for channel, c := range consent {
		if c.At.IsZero() {
			c.At = s.now()
		}
		g := "0"
		if c.Granted {
			g = "1"
		}
		args = append(args, channel, g, c.At.Unix())
	}
	keys := []string{keysFor(customerID).consent()}
	if err := s.run(ctx, s.scripts.consent, keys, args); err != nil {
		return fmt.Errorf("cannot put consent of customer %q: %w", customerID, err)
	}
	return nil
}

// Erase deletes the customer's features, counters and consent. Idempotency
// markers stay until they expire (see the package doc).
func (s *Store) Erase(ctx context.Context, customerID string) error {
	if customerID == "" {
		return errors.New("cannot erase customer: customer id is empty")
	}
	k := keysFor(customerID)
	keys := []string{k.features(), k.counters(), k.consent(), k.pruned()}
	if err := s.run(ctx, s.scripts.erase, keys, []any{s.cfg.InvalidationChannel, customerID}); err != nil {
		return fmt.Errorf("cannot erase customer %q: %w", customerID, err)
	}
	return nil
}

// ApplyEvents counts each event once per event id, however often a batch is
// retried, and reports how many were new. Each event counts for every
// subject of features.Subjects on the day of its time, and a new event's
// feature updates are applied with its counting, in the order of the batch.
// The events of one customer are one script, and the scripts of all
// customers in the batch go in one pipeline. An update that cannot be
// stored (no feature name, an unknown operation, a value that does not
// encode) fails the whole batch before anything is sent. On error, applied
// counts the customers whose scripts did run; retrying the whole batch is
// safe.
func (s *Store) ApplyEvents(ctx context.Context, events []features.Event) (applied int, err error) {
	if len(events) == 0 {
		return 0, nil
	}
	for i, ev := range events {
		switch {
		case ev.ID == "":
			return 0, fmt.Errorf("cannot apply events: event %d has no id", i)
		case ev.CustomerID == "":
			return 0, fmt.Errorf("cannot apply events: event %d has no customer id", i)
		case ev.Type == "":
			return 0, fmt.Errorf("cannot apply events: event %d has no type", i)
		}
	}
	now := s.now()
	// Group by customer, in order of first appearance.
	byCustomer := make(map[string]int)
	var calls []scriptCall
	// The JSON of every set update is a slice of buf (see appendUpdates).
	var buf []byte
	for n, ev := range events {
		i, ok := byCustomer[ev.CustomerID]
		if !ok {
			i = len(calls)
			byCustomer[ev.CustomerID] = i
			calls = append(calls, s.countCall(ev.CustomerID, now))
		}
		c := &calls[i]
		c.keys = append(c.keys, keysFor(ev.CustomerID).event(ev.ID))
		c.addGroup(len(c.keys), features.Day(ev.Time), ev.Type,
			features.Subjects(ev.Touchpoint, ev.Kind, ev.Rule, ev.Channel))
		var err error
		if c.args, buf, err = appendUpdates(c.args, buf, ev.Updates); err != nil {
			return 0, fmt.Errorf("cannot apply events: event %d (%q): %w", n, ev.ID, err)
		}
	}
	var cmds []*redis.Cmd
	err = s.write(ctx, func(ctx context.Context) error {
		var err error
		cmds, err = evalAll(ctx, s.client, s.scripts.count, calls)
		return pipelineErr(cmds, err)
	})
	// Each call answers one flag per event of its customer, in order.
	var tallies []features.Tally
	seen := make([]int, len(calls))
	for k := range events {
		ev := &events[k]
		ev.Applied = false
		i := byCustomer[ev.CustomerID]
		if i >= len(cmds) || cmds[i] == nil {
			continue
		}
		flags, ferr := cmds[i].Text()
		if ferr != nil || seen[i] >= len(flags) {
			continue
		}
		if flags[seen[i]] == '1' {
			applied++
			ev.Applied = true
			tallies = append(tallies, ev.Tallies...)
		}
		seen[i]++
	}
	if err != nil {
		return applied, fmt.Errorf("cannot apply events: %w", err)
	}
	// The shared counters live on other slots than the customer's keys,
	// so they cannot join the script. Adding them after it means a failure
	// in between loses those tallies (a retry finds the events counted)
	// rather than counting them twice.
	if err := s.AddTallies(ctx, tallies); err != nil {
		return applied, fmt.Errorf("cannot apply events: the events were counted but not their experiment and bandit tallies: %w", err)
	}
	return applied, nil
}

// tallyKey is the hash of one scope of shared counters.
func tallyKey(scope string) string { return "tp:tally:{" + escapeTag(scope) + "}" }

// AddTallies adds to shared counters in one pipelined round trip.
func (s *Store) AddTallies(ctx context.Context, tallies []features.Tally) error {
	if len(tallies) == 0 {
		return nil
	}
	return s.write(ctx, func(ctx context.Context) error {
		cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, t := range tallies {
				p.HIncrByFloat(ctx, tallyKey(t.Scope), t.Field, t.Delta)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadTallies returns every counter of a scope. Its readers refresh in
// the background and keep what they had on failure, so like AppendStream
// it bypasses the circuit breakers: a slow refresh must not make
// decisions skip the store.
func (s *Store) ReadTallies(ctx context.Context, scope string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	raw, err := s.client.HGetAll(ctx, tallyKey(scope)).Result()
	if err != nil {
		return nil, fmt.Errorf("cannot read tallies %q: %w", scope, err)
	}
	out := make(map[string]float64, len(raw))
	for f, v := range raw {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			out[f] = n
		}
	}
	return out, nil
}

// ReserveDecisions counts one decision for every limit's subject, only if
// all limits have room, atomically (see features.Writer).
func (s *Store) ReserveDecisions(ctx context.Context, customerID string, day int32, limits []features.DecisionLimit) (bool, error) {
	if customerID == "" {
		return false, errors.New("cannot reserve decision: customer id is empty")
	}
	if len(limits) == 0 {
		return true, nil
	}
	args := make([]any, 0, 3+3*len(limits))
	args = append(args, s.cfg.InvalidationChannel, customerID, day)
	for _, l := range limits {
		args = append(args, l.Subject, l.Days, l.Count)
	}
	var granted int64
	err := s.write(ctx, func(ctx context.Context) error {
		var err error
		granted, err = s.scripts.reserve.Run(ctx, s.client, []string{keysFor(customerID).counters()}, args...).Int64()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("cannot reserve decision for customer %q: %w", customerID, err)
	}
	return granted == 1, nil
}

// countCall starts the count script's call for one customer. The markers
// of its events follow these keys, so their indexes are len(keys) as each
// is appended.
func (s *Store) countCall(customerID string, now time.Time) scriptCall {
	k := keysFor(customerID)
	today := features.Day(now)
	return scriptCall{
		keys: []string{k.counters(), k.pruned(), k.features()},
		args: []any{
			s.cfg.InvalidationChannel, customerID,
			int64(s.cfg.EventTTL / time.Second),
			today - int32(s.cfg.CounterDays), today,
		},
	}
}

// addGroup adds one event (or decision) to a count call: marker is its index
// in keys (1-based, 0 for none). The group's updates must follow it (see
// appendUpdates), even when there are none.
func (c *scriptCall) addGroup(marker int, day int32, event string, subjects []string) {
	c.args = append(c.args, marker, day, len(subjects))
	for _, subject := range subjects {
		c.args = append(c.args, counterField(event, subject, day))
	}
}

// appendUpdates appends the count script's update list for one group: their
// number, then "s", feature, JSON value for a set and "a", feature, delta,
// base for an add. Like appendPairs it encodes into buf, which it returns
// grown. Nothing the script could not store gets this far: the script runs
// its groups in order and a failure halfway would leave the earlier ones
// applied.
func appendUpdates(args []any, buf []byte, updates []features.FeatureUpdate) ([]any, []byte, error) {
	args = append(args, len(updates))
	for _, u := range updates {
		if u.Feature == "" {
			return args, buf, errors.New("feature update with an empty feature name")
		}
		switch u.Op {
		case features.UpdateSet:
			start := len(buf)
			var err error
			if buf, err = appendValue(buf, u.Value); err != nil {
				return args, buf, fmt.Errorf("cannot set feature %q: %w", u.Feature, err)
			}
			args = append(args, "s", u.Feature, buf[start:len(buf):len(buf)])
		case features.UpdateAdd:
			if u.Value.Kind != features.KindNumber {
				return args, buf, fmt.Errorf("cannot add to feature %q: the value is a %v, not a number", u.Feature, u.Value.Kind)
			}
			if !finite(u.Value.Num) || !finite(u.Base) {
				return args, buf, fmt.Errorf("cannot add to feature %q: the value or its base is not finite", u.Feature)
			}
			args = append(args, "a", u.Feature,
				strconv.FormatFloat(u.Value.Num, 'g', -1, 64), strconv.FormatFloat(u.Base, 'g', -1, 64))
		default:
			return args, buf, fmt.Errorf("feature %q: unknown update operation %d", u.Feature, u.Op)
		}
	}
	return args, buf, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Consume takes one unit of the touchpoint's budget when neither the total
// nor the day's limit is reached; zero (or less) means no limit of that
// kind. Redis checks and counts atomically, so all nodes together stay
// within the limits. An error means the unit may or may not be spent;
// callers should treat it as not granted.
func (s *Store) Consume(ctx context.Context, touchpoint string, day int32, total, perDay int64) (bool, error) {
	if total <= 0 && perDay <= 0 {
		return true, nil
	}
	if touchpoint == "" {
		return false, errors.New("cannot consume budget: touchpoint id is empty")
	}
	totalKey, dayKey := budgetKeys(touchpoint, day)
	// The day's count is kept through the next day, for inspection.
	expireAt := (int64(day) + 2) * 86400
	var granted int64
	err := s.write(ctx, func(ctx context.Context) error {
		var err error
		granted, err = s.scripts.consume.Run(ctx, s.client, []string{totalKey, dayKey},
			max(total, 0), max(perDay, 0), expireAt).Int64()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("cannot consume budget of touchpoint %q: %w", touchpoint, err)
	}
	return granted == 1, nil
}

// run runs one script through the write breaker within WriteTimeout.
func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args []any) error {
	return s.write(ctx, func(ctx context.Context) error {
		return sc.Run(ctx, s.client, keys, args...).Err()
	})
}

// pipelineErr is err, the first error of a pipeline, unless some command
// of it did reach Redis: in a Cluster a pipeline goes to several nodes, and
// one node's dial error does not mean nothing was applied.
func pipelineErr(cmds []*redis.Cmd, err error) error {
	if err == nil || !notSent(err) {
		return err
	}
	for _, cmd := range cmds {
		if cmd != nil && !notSent(cmd.Err()) {
			return sentError{err}
		}
	}
	return err
}

// sentError is an error after which some commands did reach Redis, whatever
// the error it wraps says.
type sentError struct{ err error }

func (e sentError) Error() string { return e.err.Error() }
func (e sentError) Unwrap() error { return e.err }

// scriptCall is one script invocation in a pipeline.
type scriptCall struct {
	keys []string
	args []any
}

// evalAll runs sc once per call in one pipeline (per Cluster node). Scripts
// the server does not know yet (after a restart or failover) are sent again
// in full; they did not run, so that is safe. It returns every call's
// command and the first error.
func evalAll(ctx context.Context, client redis.UniversalClient, sc *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	pipe := client.Pipeline()
	for i, c := range calls {
		cmds[i] = sc.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	if _, err := pipe.Exec(ctx); err == nil {
		return cmds, nil
	}
	pipe = client.Pipeline()
	resend := false
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			cmds[i] = sc.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
			resend = true
		}
	}
	if resend {
		_, _ = pipe.Exec(ctx)
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}
