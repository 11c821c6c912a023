package loadtest

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestServeBaselineWork runs the baseline as `touchpoint loadtest baseline`
// does, through a real listener and client: with --work every answer
// waits at least that long, without it the answer is the same bytes, and
// cancelling the context stops the server.
func TestServeBaselineWork(t *testing.T) {
	const work = 30 * time.Millisecond
	for _, w := range []time.Duration{0, work} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- ServeBaseline(ctx, ln, w) }()

		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + ln.Addr().String() + "/v1/decide")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetBodyString(`{"customer_id":"c-000001","context":{"page":"/cart"}}`)
		start := time.Now()
		err = fasthttp.DoTimeout(req, resp, 10*time.Second)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("work %v: %v", w, err)
		}
		if resp.StatusCode() != fasthttp.StatusOK || !bytes.Equal(resp.Body(), baselineAnswer) {
			t.Errorf("work %v: status %d, body %q", w, resp.StatusCode(), resp.Body())
		}
		if took < w {
			t.Errorf("work %v: answered after %v", w, took)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)

		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("work %v: ServeBaseline returned %v after cancel", w, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("work %v: ServeBaseline did not return after cancel", w)
		}
	}
}
