package triggers

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// MemoryQueue is a Queue in process, for one node on the embedded store.
// Pending firings die with the process, as the embedded store's writes do.
//
// Firings wait in a heap by due time, so a claim costs the log of what is
// pending, not a look at all of it: a busy site keeps a cart trigger
// pending for every customer who touched a cart in the last two hours.
// A rescheduled or cancelled firing leaves its old heap entry behind,
// recognised as stale when it surfaces; the heap is rebuilt when stale
// entries outnumber live ones.
type MemoryQueue struct {
	mu     sync.Mutex
	due    map[string]time.Time
	heap   dueHeap
	leased map[string]lease
}

type lease struct {
	token   string
	due     time.Time // the firing's own due time
	expires time.Time
}

type dueEntry struct {
	key string
	due time.Time
}

type dueHeap []dueEntry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].key < h[j].key
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// NewMemoryQueue returns an empty in-process queue.
func NewMemoryQueue() *MemoryQueue {
	return &MemoryQueue{due: map[string]time.Time{}, leased: map[string]lease{}}
}

// schedule sets key's pending firing; callers hold mu.
func (q *MemoryQueue) schedule(key string, due time.Time) {
	q.due[key] = due
	heap.Push(&q.heap, dueEntry{key: key, due: due})
	if len(q.heap) > 2*len(q.due)+1024 {
		q.heap = q.heap[:0]
		for k, d := range q.due {
			q.heap = append(q.heap, dueEntry{key: k, due: d})
		}
		heap.Init(&q.heap)
	}
}

// Schedule sets key's pending firing to due.
func (q *MemoryQueue) Schedule(_ context.Context, key string, due time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.schedule(key, due)
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
				q.schedule(key, l.due)
			}
		}
	}
	var out []Claim
	var busy []dueEntry
	for len(out) < n && len(q.heap) > 0 && !q.heap[0].due.After(now) {
		e := heap.Pop(&q.heap).(dueEntry)
		if cur, ok := q.due[e.key]; !ok || !cur.Equal(e.due) {
			continue // cancelled or rescheduled since
		}
		if _, leased := q.leased[e.key]; leased {
			// Rescheduled while a claim of it is in flight: it waits for
			// that claim to end.
			busy = append(busy, e)
			continue
		}
		c := Claim{Key: e.key, Due: e.due, Token: newToken()}
		delete(q.due, e.key)
		q.leased[e.key] = lease{token: c.Token, due: c.Due, expires: now.Add(leaseFor)}
		out = append(out, c)
	}
	for _, e := range busy {
		heap.Push(&q.heap, e)
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
		q.schedule(c.Key, due)
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
