// Package redisstore owns customer state in Redis, the system of record when
// several Touchpoint nodes run behind a load balancer: features, event
// counters, consent, idempotency markers and touchpoint budgets. Its Store
// implements features.Store, features.Writer and features.Budgets for a
// standalone Redis or a Redis Cluster, tells every node's cache when a
// customer changed, and keeps serving (degraded) while Redis is away.
//
// # Key layout
//
// Every key of one customer carries the customer id as its hash tag, so all of
// them live in one Cluster slot: a lookup is one pipelined round trip to one
// node, and each write is one Lua script that touches only that slot.
//
//	tp:{<customer>}:f             hash  feature name → JSON value (12.5, "gold", true, ["a","b"])
//	tp:{<customer>}:n             hash  "<event>|<subject>|<day>" → count, e.g. "impression|tp:cart_coupon_10|20775"
//	tp:{<customer>}:k             hash  channel → "1|<unix seconds>" (granted) or "0|<unix seconds>" (refused)
//	tp:{<customer>}:p             string  the day counters were last pruned (expires after two days)
//	tp:{<customer>}:e:<event id>  string  "1": the event was counted (expires after Config.EventTTL, 30 days)
//	tp:budget:{<touchpoint>}      string  how many units of the touchpoint's budget were ever consumed
//	tp:budget:{<touchpoint>}:<day>  string  units consumed that day (expires the day after)
//	tp:trig:{<queue>}:due         zset  "<trigger>|<customer>" → unix ms the firing is due
//	tp:trig:{<queue>}:lease       zset  a claimed firing → unix ms its lease ends
//	tp:trig:{<queue>}:claim       hash  a claimed firing → "<token>|<due unix ms>"
//
// Days are features.Day numbers (days since 1970-01-01, UTC). A customer id
// containing '{', '}' or '%' is written percent-encoded inside the braces
// (%7B, %7D, %25), so every id yields a well-formed hash tag and no two ids
// share a key; other ids appear as they are. Touchpoint ids in budget keys are
// encoded the same way.
//
// Lookup returns a record when any of the f, n or k hashes exists and
// answers (nil, nil) otherwise, but a customer is known (features.Record.Known)
// only while the f hash exists: events may be reported for any id, and for a
// customer erased since, without making them known. An event that carries
// feature updates (a behavioural event) is the exception: it writes the f
// hash, so it makes its customer known. Counter fields older than Config.CounterDays
// are not returned by Lookup, are not incremented, and are deleted by the
// first counting write of each day (an HKEYS scan of that customer's counters
// hash). Erase deletes f, n, k and p; the idempotency markers stay until
// they expire, so a retried event batch cannot bring an erased customer's
// counters back, and they hold nothing but an event id.
//
// Idempotency markers are per customer: an event id is counted once for its
// customer. Event ids are expected to be globally unique anyway.
//
// # Writes
//
// PutFeatures, PutConsent, Erase, ApplyEvents and ReserveDecisions each run one
// Lua script per customer (a batch of events for many customers is one
// pipeline of scripts), so a write and the invalidation it publishes are
// atomic and take one round trip. ApplyEvents applies a new event's feature
// updates in the same script as its counting and marker, so a retried
// event id changes neither. Import, the bulk load, pipelines plain DEL
// and HSET commands instead and announces once at the end. PutConsent keeps
// the newer answer per channel: an update whose time is older than the
// stored one is ignored, so a delayed retry cannot undo a later revocation.
// Budget consumption is a
// script too: the check against the total and per-day limits and the
// increments happen atomically in Redis, so any number of nodes together
// never hand out more than the budget.
//
// Commands are not retried by the client: consuming a budget or counting a
// decision is not idempotent, and a lookup has milliseconds to answer. A
// write that timed out may or may not have happened; for budgets that errs
// towards handing out fewer units, never more. A write that could not get a
// connection never reached Redis, so the store tries it again, with a short
// backoff, within its WriteTimeout. Write errors that mean nothing reached
// Redis (breaker open, no connection) are also features.ErrNotApplied; any
// other write error leaves the outcome unknown.
//
// # Invalidation across nodes
//
// Every customer write publishes the customer id on the invalidation channel
// (Config.InvalidationChannel, "tp:invalidate"); an Import publishes one
// empty id when it ends, meaning "drop everything". Subscribe delivers these
// to a callback, normally features.Cache.Invalidate. In a Cluster a PUBLISH
// on any node reaches subscribers on every node, so one subscription per
// Touchpoint node is enough.
//
// Plain pub/sub was chosen over RESP3 client-side caching (CLIENT TRACKING):
// it works the same for a standalone Redis and a Cluster, the cache it
// invalidates is our own ristretto layer (features.Cache, with its cost
// accounting, TTLs and negative caching) rather than one inside the Redis
// client, and one message per changed customer is simple to reason about.
// The price is that messages sent while a node's subscription is down are
// lost: Subscribe therefore asks the callback to drop everything after every
// resubscribe, and the cache TTL bounds how long anything else can stay
// stale.
//
// # Degrading
//
// Calls go through two circuit breakers, one for lookups and one for
// everything else, so lookup timeouts (milliseconds each) never refuse
// writes that would succeed. A breaker opens after Config.Breaker.Failures
// calls in a row have failed, if they include that many connection
// failures (refused, reset, no connection to be had, or a reply that Redis
// cannot serve) or no call has succeeded for Config.Breaker.Span: a slow
// lookup degrades its own decision only, and a stall of this process that
// times out every call in flight at once does not open it. Open, calls fail
// at once with ErrUnavailable instead of waiting on a dead Redis. After a
// backoff one call is let through as a probe; its success closes the
// breaker, its failure opens it again, for twice as long (up to
// Config.Breaker.MaxBackoff) if it could not connect. A breaker that opened
// because calls could not connect also closes as soon as a call through the
// other one reaches Redis; one that opened because calls were slow waits
// for its own probe. A write that could not get a connection is tried
// again within its time, each try counting with the breaker. The engine
// answers a failed Lookup with empty features and marks the decision
// degraded.
//
// go-redis keeps several connection pools (commands, pipelines, pub/sub);
// each, after as many failed dials as it has connections, answers requests
// for new connections with its last dial error until a background dial,
// once a second, succeeds. The store dials itself and numbers its dials: a
// dial error older than a dial that has succeeded since is such a pool
// answering from memory, which says nothing about Redis and does not count
// with the breakers, and a write that got one is tried again.
//
// State reports "down" while a breaker is open, "degraded" while calls fail,
// new connections cannot be made (the last dial failed, or a pool answered
// from an old dial error in the last two seconds) or an invalidation
// subscription is being re-established, and "up" otherwise, for readiness
// checks; Stats counts
// calls, failures, breaker openings, undecodable values and resubscribes for
// metrics. With WithLogger, each of these changes is logged once.
package redisstore
