package decisionlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValidAndOff(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Enabled || c.Sample != 1 || c.Queue != 65536 {
		t.Errorf("defaults %+v", c)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Enabled = true
	c.Sample = 1.5
	c.Queue = 0
	c.File.MaxSizeMB = 0
	c.File.MaxAge = 36 * time.Hour
	c.RedisStream.MaxLen = 0
	c.HashKeyFile = "k"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"decision_log.sample", "decision_log.queue", "needs a sink", "max_size_mb",
		"max_age", "redis_stream.maxlen", "hash_key_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestHashKey(t *testing.T) {
	c := DefaultConfig()
	if k, err := c.HashKey(func(string) string { return "" }); k != nil || err != nil {
		t.Errorf("hashing off: %q %v", k, err)
	}
	c.HashCustomerIDs = true
	if _, err := c.HashKey(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), KeyEnv) {
		t.Errorf("no key: %v", err)
	}
	if _, err := c.HashKey(func(string) string { return "short" }); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	env := func(n string) string {
		if n == KeyEnv {
			return "from-the-environment-0123"
		}
		return ""
	}
	c.HashKeyFile = filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(c.HashKeyFile, []byte("from-the-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := c.HashKey(env); err != nil || string(k) != "from-the-environment-0123" {
		t.Errorf("the environment comes first: %q %v", k, err)
	}
	if k, err := c.HashKey(func(string) string { return "" }); err != nil || string(k) != "from-the-file-0123456789" {
		t.Errorf("from the file: %q %v", k, err)
	}
}

func TestNewRefusesHashingWithoutKey(t *testing.T) {
	c := testConfig()
	c.HashCustomerIDs = true
	if _, err := New(c, Options{sinks: []sink{newMemSink()}}); err == nil {
		t.Error("New accepted hashing without a key")
	}
	c = testConfig()
	c.File.Path = ""
	c.RedisStream.Key = "tp:decisions"
	if _, err := New(c, Options{}); err == nil {
		t.Error("New accepted a stream sink without Redis")
	}
}
