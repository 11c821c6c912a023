package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/touchpoint-dev/touchpoint/delivery"
)

// writes records each Write call; it is not safe for concurrent use, so
// the race detector sees any write the Writer fails to serialise.
type writes struct {
	calls []string
	err   error
}

func (w *writes) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func TestWriterOneLinePerMessage(t *testing.T) {
	out := &writes{}
	w := delivery.NewWriter(out)
	for _, body := range []string{`{"a":1}`, "{\n  \"b\": [1, 2],\n  \"c\": \"x y\"\r\n}\n"} {
		if err := w.Deliver(t.Context(), "f-1", []byte(body)); err != nil {
			t.Fatalf("Deliver(%q): %v", body, err)
		}
	}
	// One Write per message, so lines stay whole on an output others
	// write to as well.
	want := []string{"{\"a\":1}\n", "{\"b\":[1,2],\"c\":\"x y\"}\n"}
	if fmt.Sprint(out.calls) != fmt.Sprint(want) {
		t.Errorf("writes = %q, want %q", out.calls, want)
	}
}

func TestWriterRefuses(t *testing.T) {
	out := &writes{}
	w := delivery.NewWriter(out)
	if err := w.Deliver(t.Context(), "f-2", []byte("not\njson")); err == nil || !strings.Contains(err.Error(), `"f-2"`) {
		t.Errorf("Deliver of a non-JSON body over two lines = %v, want an error naming the message", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.Deliver(ctx, "f-3", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver with a cancelled context = %v, want context.Canceled", err)
	}
	if len(out.calls) != 0 {
		t.Errorf("writes = %q, want none", out.calls)
	}
	full := errors.New("disk full")
	w = delivery.NewWriter(&writes{err: full})
	if err := w.Deliver(t.Context(), "f-4", []byte(`{}`)); !errors.Is(err, full) || !strings.Contains(err.Error(), `"f-4"`) {
		t.Errorf("Deliver to a failing writer = %v, want its error and the message id", err)
	}
}

func TestWriterConcurrent(t *testing.T) {
	var out bytes.Buffer // not safe for concurrent use on its own
	w := delivery.NewWriter(&out)
	const senders, each = 16, 50
	errs := make(chan error, senders*each)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf(`{"sender":%d,"n":%d,"pad":%q}`, s, i, strings.Repeat("p", 10*s))
				errs <- w.Deliver(context.Background(), "f", []byte(body))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != senders*each {
		t.Fatalf("%d lines, want %d", len(lines), senders*each)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		var m struct{ Sender, N int }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not one message: %v", line, err)
		}
		seen[fmt.Sprint(m.Sender, m.N)] = true
	}
	if len(seen) != senders*each {
		t.Errorf("%d distinct messages, want %d", len(seen), senders*each)
	}
}
