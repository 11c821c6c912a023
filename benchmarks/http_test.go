package benchmarks

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/server"
)

const decideBody = `{"customer_id":"c-000042","placements":[{"id":"cart_banner","count":1},{"id":"product_recs","count":3}],"context":{"channel":"web","page":"/cart","device":"mobile"}}`

// bareResponse is about the size of a real decision, so the baseline writes
// as many bytes as the server does.
var bareResponse = []byte(`{"decision_id":"019ab1c3e5f2a1b2c3d40000000a1b2c","customer_id":"c-000042","ruleset":"7f96e7f8da86","known_customer":true,"placements":{"cart_banner":[{"touchpoint":"cart_coupon_10","kind":"coupon","rule":"cart_abandon_coupon","score":0.62,"content":{"title":"Mei, 10% off your cart","code":"CART10"}}],"product_recs":[]}}`)

// startBare serves the baseline: read the body, write a fixed JSON answer.
func startBare(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		_ = ctx.PostBody()
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBody(bareResponse)
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// startTouchpoint serves the demo ruleset and customers as `make run` does.
func startTouchpoint(b *testing.B) string {
	store, err := features.OpenJSONL("../configs/demo/customers.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	cache, err := features.NewCache(store, features.DefaultCacheConfig())
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}, cache, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(server.DefaultConfig(), eng, server.Options{Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = srv.Run(ctx, ln)
	}()
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		cache.Close()
	})
	return ln.Addr().String()
}

// benchmarkHTTP sends decide requests over loopback keep-alive connections
// from parallel clients and checks every answer.
func benchmarkHTTP(b *testing.B, addr string) {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	do := func(req *fasthttp.Request, resp *fasthttp.Response) {
		req.SetRequestURI("http://" + addr + "/v1/decide")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBodyString(decideBody)
		if err := client.Do(req, resp); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode() != 200 || !strings.Contains(string(resp.Body()), `"cart_banner"`) {
			b.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
		}
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	do(req, resp) // warm the feature cache
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			do(req, resp)
		}
	})
}

// BenchmarkHTTP compares the full /v1/decide server with a bare fasthttp
// handler under the same client in the same run: read the ratio of the two
// ns/op figures, not the absolute numbers (client and server share the CPU).
func BenchmarkHTTP(b *testing.B) {
	b.Run("bare_fasthttp", func(b *testing.B) { benchmarkHTTP(b, startBare(b)) })
	b.Run("touchpoint_decide", func(b *testing.B) { benchmarkHTTP(b, startTouchpoint(b)) })
}
