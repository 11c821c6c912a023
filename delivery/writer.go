package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Writer delivers each message as one line on an io.Writer: the body,
// then a newline. It is the demo's delivery, for watching triggers fire
// without a receiver; a failed write is returned, never retried. It is
// safe for concurrent use.
type Writer struct {
	// mu is held across the write on purpose: it is what keeps lines
	// from concurrent firings whole.
	mu  sync.Mutex
	out io.Writer
	buf bytes.Buffer
}

// NewWriter returns a Writer writing to out.
func NewWriter(out io.Writer) *Writer { return &Writer{out: out} }

// Deliver writes body as one line. A body that spans lines is compacted
// first, so one line stays one message; it must then be JSON.
func (w *Writer) Deliver(ctx context.Context, id string, body []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("message %q not written: %w", id, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	if bytes.ContainsAny(body, "\r\n") {
		if err := json.Compact(&w.buf, body); err != nil {
			return fmt.Errorf("message %q spans lines and is not JSON that could be put on one: %w", id, err)
		}
	} else {
		w.buf.Write(body)
	}
	w.buf.WriteByte('\n')
	if _, err := w.out.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("cannot write message %q: %w", id, err)
	}
	return nil
}
