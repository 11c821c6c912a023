package loadtest

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// okBody is about the size of a real decision.
const okBody = `{"decision_id":"019ab1c3e5f2a1b2c3d40000000a1b2c","customer_id":"c-000042","ruleset":"7f96e7f8da86","known_customer":true,"placements":{"cart_banner":[]}}`

// okHandler answers decides with a decision and event batches the way the
// events API does: 202 with the number of events.
func okHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if string(ctx.Path()) == "/v1/events" {
		n := bytes.Count(ctx.PostBody(), []byte(`"event_id"`))
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetBodyString(`{"accepted":` + strconv.Itoa(n) + `,"duplicates":0}`)
		return
	}
	ctx.SetBodyString(okBody)
}

// startServer serves h on a loopback port until the test ends.
func startServer(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}

// staller pauses every answer for pause once every period, like a server
// with a stop-the-world hiccup.
type staller struct {
	gate atomic.Pointer[chan struct{}]
}

func (s *staller) handler(ctx *fasthttp.RequestCtx) {
	if g := s.gate.Load(); g != nil {
		<-*g
	}
	okHandler(ctx)
}

// start runs the stall clock until the test ends.
func (s *staller) start(t *testing.T, period, pause time.Duration) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ch := make(chan struct{})
			s.gate.Store(&ch)
			pauseTimer := time.NewTimer(pause)
			select {
			case <-stop:
			case <-pauseTimer.C:
			}
			pauseTimer.Stop()
			s.gate.Store(nil)
			close(ch)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

func demoTraffic(t *testing.T) *Traffic {
	t.Helper()
	tr, err := LoadTraffic("../configs/loadtest/traffic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func testConfig(t *testing.T, url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Traffic = demoTraffic(t)
	cfg.TrafficPath = "configs/loadtest/traffic.yaml"
	cfg.Customers = 3000
	cfg.Pause = 20 * time.Millisecond
	return cfg
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}
