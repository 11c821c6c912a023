package loadtest

import (
	"context"
	"net"

	"github.com/valyala/fasthttp"
)

// baselineAnswer is about the size of a real decision, so the baseline
// writes as many bytes as a decide server does.
var baselineAnswer = []byte(`{"decision_id":"019ab1c3e5f2a1b2c3d40000000a1b2c","customer_id":"c-000042","ruleset":"7f96e7f8da86","known_customer":true,"placements":{"cart_banner":[{"touchpoint":"cart_coupon_10","kind":"coupon","rule":"cart_abandon_coupon","score":6.2,"content":{"title":"Mei, 10% off your cart","code":"CART10"}}]}}`)

// ServeBaseline serves the peer a decide server is compared with: a bare
// fasthttp handler that reads the body and writes a fixed decision-sized
// JSON answer, with nothing in between. It serves until ctx is cancelled.
func ServeBaseline(ctx context.Context, ln net.Listener) error {
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			_ = c.PostBody()
			c.SetContentType("application/json")
			c.Response.Header.Set("Cache-Control", "no-store")
			c.SetBody(baselineAnswer)
		},
		NoDefaultServerHeader: true,
	}
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
