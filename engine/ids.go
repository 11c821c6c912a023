package engine

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"
	"unsafe"
)

// idGenerator makes decision ids that are unique across nodes without
// coordination: milliseconds since the epoch, a random node tag chosen at
// start, and a per-process counter, as 32 hex digits. Ids sort roughly by time.
type idGenerator struct {
	node    uint32
	counter atomic.Uint64
}

func (g *idGenerator) init() {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	g.node = binary.LittleEndian.Uint32(b[:4])
	g.counter.Store(binary.LittleEndian.Uint64(b[4:]) & (1<<40 - 1))
}

const hexDigits = "0123456789abcdef"

// next writes a new id into buf and returns it as a string that shares buf's
// memory, so making an id does not allocate; the id is valid until buf is
// written again (the next decision made with the same Decision).
func (g *idGenerator) next(buf *[maxDecisionIDLen]byte, now time.Time) string {
	ms := uint64(now.UnixMilli())
	n := g.counter.Add(1)
	putHex(buf[0:12], ms)
	putHex(buf[12:20], uint64(g.node))
	putHex(buf[20:32], n)
	return unsafe.String(&buf[0], 32)
}

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}
