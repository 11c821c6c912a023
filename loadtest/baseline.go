package loadtest

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// baselineAnswer is about the size of a real decision, so the baseline
// writes as many bytes as a decide server does.
var baselineAnswer = []byte(`{"decision_id":"019ab1c3e5f2a1b2c3d40000000a1b2c","customer_id":"c-000042","ruleset":"7f96e7f8da86","known_customer":true,"placements":{"cart_banner":[{"touchpoint":"cart_coupon_10","kind":"coupon","rule":"cart_abandon_coupon","score":6.2,"content":{"title":"Mei, 10% off your cart","code":"CART10"}}]}}`)

// ServeBaseline serves the peer a decide server is compared with: a bare
// fasthttp handler that reads the body and writes a fixed decision-sized
// JSON answer, with nothing in between. Event batches (POST /v1/events)
// get the events API's 202 answer, counting the batch's event ids, so
// traffic with events reads the same against the peer. It serves until
// ctx is cancelled.
//
// work, when above zero, keeps the CPU busy that long on every request
// before answering: a calibration of what a handler doing that much work
// of its own can reach on this machine, against the same handler without
// it.
func ServeBaseline(ctx context.Context, ln net.Listener, work time.Duration) error {
	handler := baselineHandler
	if work > 0 {
		// spun keeps the compiler from dropping spin's loop.
		var spun atomic.Uint64
		handler = func(c *fasthttp.RequestCtx) {
			spun.Store(spin(work))
			baselineHandler(c)
		}
	}
	srv := &fasthttp.Server{Handler: handler, NoDefaultServerHeader: true}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		err := srv.Shutdown()
		<-done
		return err
	case err := <-done:
		return err
	}
}

func baselineHandler(c *fasthttp.RequestCtx) {
	body := c.PostBody()
	c.SetContentType("application/json")
	c.Response.Header.Set("Cache-Control", "no-store")
	if string(c.Path()) == defaultEventsPath {
		n := bytes.Count(body, []byte(`"event_id"`))
		var buf [64]byte
		answer := strconv.AppendInt(append(buf[:0], `{"accepted":`...), int64(n), 10)
		c.SetStatusCode(fasthttp.StatusAccepted)
		c.SetBody(append(answer, `,"duplicates":0}`...))
		return
	}
	c.SetBody(baselineAnswer)
}

// spin keeps the CPU busy for d without sleeping or yielding, as a
// handler's own computation would, and returns what it computed.
func spin(d time.Duration) uint64 {
	start := time.Now()
	x := uint64(1)
	for time.Since(start) < d {
		for range 64 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}
