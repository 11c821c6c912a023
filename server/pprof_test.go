package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The runtime's profiles are served under /debug/pprof/ to holders of the
// admin key, and what comes back is a profile go tool pprof reads.
func TestPprofNeedsTheAdminKey(t *testing.T) {
	cfg := testConfig()
	cfg.AdminKey = ""
	ts := startServer(t, cfg, newFakeDecider())
	expectError(t, ts.do(t, http.MethodGet, "/debug/pprof/heap", "", nil), http.StatusForbidden, codeAdminDisabled)

	ts = startServer(t, testConfig(), newFakeDecider())
	for _, path := range []string{"/debug/pprof/", "/debug/pprof", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline"} {
		r := ts.do(t, http.MethodGet, path, "", nil)
		expectError(t, r, http.StatusUnauthorized, codeUnauthorized)
		r = ts.do(t, http.MethodGet, path, "", map[string]string{"Authorization": "Bearer " + testAdminKey + "x"})
		expectError(t, r, http.StatusUnauthorized, codeUnauthorized)
	}
	expectError(t, ts.do(t, http.MethodDelete, "/debug/pprof/heap", "", map[string]string{"Authorization": "Bearer " + testAdminKey}),
		http.StatusMethodNotAllowed, codeMethodNotAllowed)
}

func TestPprofProfiles(t *testing.T) {
	cfg := testConfig()
	// A CPU profile takes longer than these; they must not cut it short.
	cfg.WriteTimeout = 300 * time.Millisecond
	cfg.ReadTimeout = 300 * time.Millisecond
	ts := startServer(t, cfg, newFakeDecider())
	ts.client.Timeout = 60 * time.Second
	auth := map[string]string{"Authorization": "Bearer " + testAdminKey}

	index := ts.do(t, http.MethodGet, "/debug/pprof/", "", auth)
	if index.status != http.StatusOK {
		t.Fatalf("index: %d %s", index.status, index.body)
	}
	for _, name := range []string{"heap", "goroutine", "allocs", "profile", "trace"} {
		if !bytes.Contains(index.body, []byte(name)) {
			t.Errorf("the index does not list %s", name)
		}
	}
	if r := ts.do(t, http.MethodGet, "/debug/pprof/goroutine?debug=1", "", auth); r.status != 200 || !bytes.Contains(r.body, []byte("goroutine profile:")) {
		t.Errorf("goroutine?debug=1: %d %.200s", r.status, r.body)
	}
	if r := ts.do(t, http.MethodGet, "/debug/pprof/nosuchprofile", "", auth); r.status != http.StatusNotFound {
		t.Errorf("an unknown profile: %d", r.status)
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		path, kind string
	}{
		{"/debug/pprof/profile?seconds=1", "cpu"},
		{"/debug/pprof/heap", "inuse_space"},
		{"/debug/pprof/allocs", "alloc_space"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			r := ts.do(t, http.MethodGet, tc.path, "", auth)
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.path, r.status, r.body)
			}
			zr, err := gzip.NewReader(bytes.NewReader(r.body))
			if err != nil {
				t.Fatalf("%s is not gzip: %v", tc.path, err)
			}
			if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
				t.Fatalf("%s: gunzip: %d bytes, %v", tc.path, len(raw), err)
			}
			file := filepath.Join(dir, tc.kind+".pb.gz")
			if err := os.WriteFile(file, r.body, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index="+tc.kind, file).CombinedOutput()
			if err != nil {
				t.Fatalf("go tool pprof -top %s: %v\n%s", tc.path, err, out)
			}
			if !strings.Contains(string(out), "Type: "+tc.kind) {
				t.Errorf("go tool pprof does not read %s as a %s profile:\n%s", tc.path, tc.kind, out)
			}
		})
	}

	trace := ts.do(t, http.MethodGet, "/debug/pprof/trace?seconds=1", "", auth)
	if trace.status != http.StatusOK || !bytes.HasPrefix(trace.body, []byte("go 1.")) {
		t.Errorf("trace: %d %.40q", trace.status, trace.body)
	}
	if r := ts.do(t, http.MethodPost, "/debug/pprof/symbol", "0x1", auth); r.status != http.StatusOK || !bytes.Contains(r.body, []byte("num_symbols")) {
		t.Errorf("symbol: %d %.200s", r.status, r.body)
	}
	if m := ts.do(t, http.MethodGet, "/metrics", "", nil); !bytes.Contains(m.body, []byte(`endpoint="pprof"`)) {
		t.Error("/metrics does not count pprof requests")
	}
}
