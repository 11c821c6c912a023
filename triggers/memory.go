package triggers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// MemoryQueue is a Queue in process, for one node on the embedded store.
// Pending firings die with the process, as the embedded store's writes do.
type MemoryQueue struct {
	mu     sync.Mutex
	due    map[string]time.Time
	leased map[string]lease
}

type lease struct {
	token   string
	due     time.Time // the firing's own due time
	expires time.Time
}

// NewMemoryQueue returns an empty in-process queue.
func NewMemoryQueue() *MemoryQueue {
	return &MemoryQueue{due: map[string]time.Time{}, leased: map[string]lease{}}
}

// Schedule sets key's pending firing to due.
func (q *MemoryQueue) Schedule(_ context.Context, key string, due time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.due[key] = due
	return nil
}

// Cancel drops key's pending firing.
func (q *MemoryQueue) Cancel(_ context.Context, key string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.due, key)
	return nil
}

// Claim takes up to n due firings, earliest first, after returning the
// ones whose lease ran out.
func (q *MemoryQueue) Claim(_ context.Context, now time.Time, leaseFor time.Duration, n int) ([]Claim, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for key, l := range q.leased {
		if !l.expires.After(now) {
			delete(q.leased, key)
			if _, pending := q.due[key]; !pending {
				q.due[key] = l.due
			}
		}
	}
	var out []Claim
	for key, due := range q.due {
		if due.After(now) {
			continue
		}
		if _, busy := q.leased[key]; busy {
			continue
		}
		out = append(out, Claim{Key: key, Due: due})
	}
	sortClaims(out)
	if len(out) > n {
		out = out[:n]
	}
	for i := range out {
		c := &out[i]
		c.Token = newToken()
		delete(q.due, c.Key)
		q.leased[c.Key] = lease{token: c.Token, due: c.Due, expires: now.Add(leaseFor)}
	}
	return out, nil
}

// Done ends c if it is still this claim's.
func (q *MemoryQueue) Done(_ context.Context, c Claim) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l, ok := q.leased[c.Key]; ok && l.token == c.Token {
		delete(q.leased, c.Key)
	}
	return nil
}

// Defer ends c and schedules the firing at due, unless a newer firing of
// the key was scheduled meanwhile.
func (q *MemoryQueue) Defer(_ context.Context, c Claim, due time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l, ok := q.leased[c.Key]; !ok || l.token != c.Token {
		return nil
	}
	delete(q.leased, c.Key)
	if _, newer := q.due[c.Key]; !newer {
		q.due[c.Key] = due
	}
	return nil
}

// Pending counts firings waiting or claimed.
func (q *MemoryQueue) Pending(context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.due) + len(q.leased)), nil
}

func newToken() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
