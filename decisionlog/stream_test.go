package decisionlog

import (
	"strconv"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/features/redisstore"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// Lines reach a real Redis Stream, one entry each, trimmed near maxlen.
func TestRedisStreamSink(t *testing.T) {
	srv := redistest.Start(t)
	rcfg := redisstore.DefaultConfig()
	rcfg.URL = srv.URL()
	rcfg.WriteTimeout = 10 * time.Second
	store, err := redisstore.Open(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	cfg := testConfig()
	cfg.File.Path = ""
	cfg.RedisStream.Key = "tp:decisions"
	cfg.RedisStream.MaxLen = 100
	cfg.RedisStream.Timeout = 10 * time.Second
	l, err := New(cfg, Options{Stream: store, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	logAndClose(t, l, n)
	if st := l.Stats(); st.Sinks[0].Name != "redis_stream" || st.Sinks[0].Written != n || st.Sinks[0].Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	length, err := srv.Do("XLEN", "tp:decisions")
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole macro nodes only, so the stream keeps at least
	// maxlen entries and somewhat more, far fewer than were written.
	if k, _ := strconv.Atoi(length); k < 100 || k >= n {
		t.Errorf("XLEN %s, want about 100", length)
	}
	// The newest entry is the last line, whole, under its field.
	last, err := srv.Do("EVAL", `local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1) return e[1][2][1] .. '=' .. e[1][2][2]`, "1", "tp:decisions")
	if err != nil {
		t.Fatal(err)
	}
	field, line, ok := cutEq(last)
	if !ok || field != StreamField {
		t.Fatalf("entry %q", last)
	}
	if s := decodeLine(t, line); s.DecisionID != "id-999" || len(s.Placements) != 2 {
		t.Errorf("last entry %s", line)
	}
}

func cutEq(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
