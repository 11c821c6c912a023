package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/touchpoint-dev/touchpoint/triggers"
)

// TriggerQueue is triggers.Queue in Redis, shared by every node that opens
// the same queue. Its three keys carry the queue name as their hash tag,
// so each operation is one command or one Lua script on one Cluster slot:
//
//	tp:trig:{<name>}:due    sorted set  key → unix ms the firing is due
//	tp:trig:{<name>}:lease  sorted set  key → unix ms its claim's lease ends
//	tp:trig:{<name>}:claim  hash        key → "<token>|<unix ms it was due>"
//
// A key is in due while its firing waits and in lease and claim while a
// node holds it; it can be in due and lease at once when it was scheduled
// again while claimed. Such a key is not claimed again before its current
// claim ends, so one key is never handled by two nodes at once. Times are
// kept to the millisecond.
//
// A claim whose lease ran out is returned to due by the next Claim, with
// the time it was due, unless the key was scheduled again meanwhile: that
// newer firing replaces it, as Schedule replaces any pending firing. Done
// and Defer act only while the claim's token is still the key's current
// one, so a node that comes back after its lease ran out and the firing
// was claimed again cannot end the new claim. Until another Claim takes
// an expired lease back, its holder may still end it.
//
// Calls go through the write breaker, within WriteTimeout, like the
// store's other writes; Pending too, since a queue read has no lookup's
// millisecond budget.
type TriggerQueue struct {
	s                 *Store
	due, lease, claim string
}

var _ triggers.Queue = (*TriggerQueue)(nil)

// TriggerQueue returns the queue called name. Nodes sharing pending
// firings use the same name; other names are separate queues.
func (s *Store) TriggerQueue(name string) *TriggerQueue {
	tag := escapeTag(name)
	if tag == "" {
		// "{}" would disable the hash tag and spread the keys over
		// slots. escapeTag never yields a bare "%", so this tag is the
		// empty name's alone.
		tag = "%"
	}
	prefix := "tp:trig:{" + tag + "}"
	return &TriggerQueue{s: s, due: prefix + ":due", lease: prefix + ":lease", claim: prefix + ":claim"}
}

func (q *TriggerQueue) keys() []string { return []string{q.due, q.lease, q.claim} }

// Schedule sets key's firing to due, replacing any pending one. A current
// claim of key is not affected: the new firing waits for it to end.
func (q *TriggerQueue) Schedule(ctx context.Context, key string, due time.Time) error {
	if key == "" {
		return errors.New("cannot schedule trigger: key is empty")
	}
	err := q.s.write(ctx, func(ctx context.Context) error {
		return q.s.client.ZAdd(ctx, q.due, redis.Z{Score: float64(due.UnixMilli()), Member: key}).Err()
	})
	if err != nil {
		return fmt.Errorf("cannot schedule trigger %q: %w", key, err)
	}
	return nil
}

// Cancel removes key's pending firing, if any. A current claim of key is
// not affected.
func (q *TriggerQueue) Cancel(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("cannot cancel trigger: key is empty")
	}
	err := q.s.write(ctx, func(ctx context.Context) error {
		return q.s.client.ZRem(ctx, q.due, key).Err()
	})
	if err != nil {
		return fmt.Errorf("cannot cancel trigger %q: %w", key, err)
	}
	return nil
}

// Claim takes up to n firings due at now, earliest first, each leased
// until now+lease (rounded up to the millisecond). Expired leases are
// returned to due first, in the same script, so their firings are among
// the earliest. A claim that failed with an unknown outcome (a timeout)
// may have taken firings nobody holds: they come due again when their
// lease runs out.
func (q *TriggerQueue) Claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]triggers.Claim, error) {
	if n <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		return nil, fmt.Errorf("cannot claim triggers: lease %v is not positive", lease)
	}
	nowMs := now.UnixMilli()
	until := nowMs + int64((lease+time.Millisecond-1)/time.Millisecond)
	// Scripts must not make up random values, so the tokens come from here:
	// one random prefix per call, numbered per claim.
	prefix := rand.Text()
	var reply []any
	err := q.s.write(ctx, func(ctx context.Context) error {
		var err error
		reply, err = triggerScripts.claim.Run(ctx, q.s.client, q.keys(), nowMs, until, n, prefix).Slice()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot claim triggers: %w", err)
	}
	if len(reply)%3 != 0 {
		return nil, fmt.Errorf("cannot claim triggers: the script answered %d values, not triples", len(reply))
	}
	claims := make([]triggers.Claim, 0, len(reply)/3)
	for i := 0; i < len(reply); i += 3 {
		key, _ := reply[i].(string)
		dueText, _ := reply[i+1].(string)
		token, _ := reply[i+2].(string)
		// Scores come back as Redis formats doubles; due times are whole
		// milliseconds, so they parse back exactly.
		due, perr := strconv.ParseFloat(dueText, 64)
		if key == "" || token == "" || perr != nil {
			// The firings are claimed already; they come due again when
			// their lease runs out.
			return nil, fmt.Errorf("cannot claim triggers: the script answered %q, %q, %q for a claim", reply[i], reply[i+1], reply[i+2])
		}
		claims = append(claims, triggers.Claim{Key: key, Due: time.UnixMilli(int64(due)), Token: token})
	}
	return claims, nil
}

// Done ends c: its firing was handled. It does nothing once the lease has
// passed to another claim.
func (q *TriggerQueue) Done(ctx context.Context, c triggers.Claim) error {
	if c.Key == "" {
		return errors.New("cannot end trigger claim: key is empty")
	}
	err := q.s.write(ctx, func(ctx context.Context) error {
		return triggerScripts.done.Run(ctx, q.s.client, q.keys(), c.Key, c.Token, "").Err()
	})
	if err != nil {
		return fmt.Errorf("cannot end trigger claim %q: %w", c.Key, err)
	}
	return nil
}

// Defer ends c by scheduling its firing again at due, unless key was
// scheduled while c was held: any firing scheduled since is newer than the
// deferred one, whatever its time, and is kept. Like Done, it does nothing
// once the lease has passed to another claim.
func (q *TriggerQueue) Defer(ctx context.Context, c triggers.Claim, due time.Time) error {
	if c.Key == "" {
		return errors.New("cannot defer trigger: key is empty")
	}
	err := q.s.write(ctx, func(ctx context.Context) error {
		return triggerScripts.done.Run(ctx, q.s.client, q.keys(), c.Key, c.Token, due.UnixMilli()).Err()
	})
	if err != nil {
		return fmt.Errorf("cannot defer trigger %q: %w", c.Key, err)
	}
	return nil
}

// Pending counts firings waiting or claimed. A key waiting while it is
// claimed counts twice: they are two firings.
func (q *TriggerQueue) Pending(ctx context.Context) (int64, error) {
	var due, leased *redis.IntCmd
	err := q.s.write(ctx, func(ctx context.Context) error {
		pipe := q.s.client.Pipeline()
		due = pipe.ZCard(ctx, q.due)
		leased = pipe.ZCard(ctx, q.lease)
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot count pending triggers: %w", err)
	}
	return due.Val() + leased.Val(), nil
}

// triggerScripts are shared by every queue: a Script only holds its source
// and digest.
var triggerScripts = struct{ claim, done *redis.Script }{
	claim: redis.NewScript(claimTriggersLua),
	done:  redis.NewScript(endTriggerLua),
}

// claimTriggersLua: KEYS due, lease, claim. ARGV: now (unix ms), lease end
// (unix ms), n, token prefix. Returns key, due (unix ms), token for each
// claim, flat.
//
// Expired leases go back to due with their original time unless the key
// is in due already (scheduled again: the newer firing wins). Then the
// earliest due keys not currently leased are claimed; leased ones stay in
// due, skipped, until their claim ends. Claimed keys leave due, so the next
// page of due keys starts after the skipped ones.
const claimTriggersLua = `
local due, lease, claim = KEYS[1], KEYS[2], KEYS[3]
local now = ARGV[1]
local expired = redis.call('ZRANGEBYSCORE', lease, '-inf', now)
for _, key in ipairs(expired) do
  local c = redis.call('HGET', claim, key)
  if c and not redis.call('ZSCORE', due, key) then
    redis.call('ZADD', due, string.match(c, '|([^|]*)$'), key)
  end
  redis.call('HDEL', claim, key)
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', lease, '-inf', now) end

local n = tonumber(ARGV[3])
local out = {}
local taken, skipped = 0, 0
while taken < n do
  local page = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', skipped, n - taken)
  if #page == 0 then break end
  for i = 1, #page, 2 do
    local key, at = page[i], page[i + 1]
    if redis.call('ZSCORE', lease, key) then
      skipped = skipped + 1
    else
      taken = taken + 1
      local token = ARGV[4] .. '.' .. taken
      redis.call('ZREM', due, key)
      redis.call('ZADD', lease, ARGV[2], key)
      redis.call('HSET', claim, key, token .. '|' .. at)
      out[#out + 1] = key
      out[#out + 1] = at
      out[#out + 1] = token
    end
  end
end
return out
`

// endTriggerLua ends a claim (Done, Defer). KEYS due, lease, claim. ARGV:
// key, token, and for Defer the new due time (unix ms), else "". Nothing
// happens unless token is the key's current claim. A deferred firing is
// scheduled only if the key is not in due: one there was scheduled while
// the claim was held and is newer. Returns 1 if the claim was ended.
const endTriggerLua = `
local due, lease, claim = KEYS[1], KEYS[2], KEYS[3]
local key = ARGV[1]
local c = redis.call('HGET', claim, key)
if not c or string.match(c, '^[^|]*') ~= ARGV[2] then return 0 end
redis.call('HDEL', claim, key)
redis.call('ZREM', lease, key)
if ARGV[3] ~= '' then redis.call('ZADD', due, 'NX', ARGV[3], key) end
return 1
`
