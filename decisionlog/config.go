package decisionlog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// KeyEnv is the environment variable the customer id hashing key is read
// from. The key never sits in the YAML configuration, which is often
// checked in or shown around; hash_key_file is the alternative.
const KeyEnv = "TOUCHPOINT_DECISION_LOG_KEY"

// Config is the decision_log section of the service configuration.
type Config struct {
	// Enabled turns the decision log on; it needs at least one sink.
	Enabled bool `yaml:"enabled"`
	// Sample is the share of decisions logged, in (0, 1]. See Logger.Sample
	// for how a decision is picked.
	Sample float64 `yaml:"sample"`
	// HashCustomerIDs writes a keyed hash of each customer id
	// (customer_hash) instead of the id. The key comes from
	// TOUCHPOINT_DECISION_LOG_KEY or, failing that, HashKeyFile.
	HashCustomerIDs bool   `yaml:"hash_customer_ids"`
	HashKeyFile     string `yaml:"hash_key_file"`
	// Queue is how many decisions may wait for the writer; beyond it
	// decisions are dropped and counted, so a slow sink never slows a
	// decide.
	Queue int `yaml:"queue"`
	// Node names this process in every line; empty means the host name.
	Node string `yaml:"node"`
	// CloseTimeout bounds how long shutdown waits for the queue to drain.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	File         FileConfig    `yaml:"file"`
	RedisStream  StreamConfig  `yaml:"redis_stream"`
}

// FileConfig is the local file sink; an empty Path turns it off.
type FileConfig struct {
	Path string `yaml:"path"`
	// MaxSizeMB rotates the file once a write would take it past this size.
	MaxSizeMB int `yaml:"max_size_mb"`
	// RotateEvery rotates the file once it has been written to for this
	// long, so each file covers a bounded time span; 0 rotates by size only.
	RotateEvery time.Duration `yaml:"rotate_every"`
	// MaxAge deletes rotated files older than this, in whole days; 0 keeps
	// them whatever their age.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBackups is how many rotated files are kept; 0 keeps them all
	// (within MaxAge).
	MaxBackups int `yaml:"max_backups"`
	// Compress gzips rotated files.
	Compress bool `yaml:"compress"`
}

// StreamConfig is the Redis Stream sink, written through the service's
// Redis (the redis section); an empty Key turns it off.
type StreamConfig struct {
	Key string `yaml:"key"`
	// MaxLen trims the stream to about this many entries (XADD MAXLEN ~),
	// so a log nobody reads cannot fill Redis.
	MaxLen int64 `yaml:"maxlen"`
	// Timeout bounds one batch of XADDs.
	Timeout time.Duration `yaml:"timeout"`
}

// Limits Validate enforces.
const (
	maxQueue     = 1 << 22
	maxFileSize  = 1 << 20 // MB: a terabyte per file is surely a typo
	minHashKey   = 16
	day          = 24 * time.Hour
	maxStreamLen = 1 << 40
)

// DefaultConfig returns the log switched off, with the settings it uses
// once a sink is given.
func DefaultConfig() Config {
	return Config{
		Sample:       1,
		Queue:        65536,
		CloseTimeout: 5 * time.Second,
		File: FileConfig{
			MaxSizeMB:   100,
			RotateEvery: day,
			MaxAge:      7 * day,
			MaxBackups:  0,
		},
		RedisStream: StreamConfig{
			MaxLen:  1000000,
			Timeout: 2 * time.Second,
		},
	}
}

// Validate reports every setting that cannot work, named as in the YAML
// configuration, joined into one error. It does not look for the hashing
// key; HashKey does.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !(c.Sample > 0 && c.Sample <= 1) {
		bad("decision_log.sample must be in (0, 1], got %v", c.Sample)
	}
	if c.Queue < 1 || c.Queue > maxQueue {
		bad("decision_log.queue must be between 1 and %d, got %d", maxQueue, c.Queue)
	}
	if c.CloseTimeout <= 0 {
		bad("decision_log.close_timeout must be positive, got %s", c.CloseTimeout)
	}
	if strings.ContainsAny(c.Node, "\r\n\t") {
		bad("decision_log.node must not contain control characters")
	}
	if c.Enabled && c.File.Path == "" && c.RedisStream.Key == "" {
		bad("decision_log.enabled needs a sink: set decision_log.file.path or decision_log.redis_stream.key")
	}
	if c.HashKeyFile != "" && !c.HashCustomerIDs {
		bad("decision_log.hash_key_file is set but decision_log.hash_customer_ids is false")
	}
	f := c.File
	if f.MaxSizeMB < 1 || f.MaxSizeMB > maxFileSize {
		bad("decision_log.file.max_size_mb must be between 1 and %d, got %d", maxFileSize, f.MaxSizeMB)
	}
	if f.RotateEvery < 0 {
		bad("decision_log.file.rotate_every must not be negative, got %s", f.RotateEvery)
	} else if f.RotateEvery > 0 && f.RotateEvery < time.Minute {
		bad("decision_log.file.rotate_every must be at least 1m (or 0 for size only), got %s", f.RotateEvery)
	}
	// The rotation library keeps files for whole days.
	if f.MaxAge < 0 || f.MaxAge%day != 0 {
		bad("decision_log.file.max_age must be a whole number of days (24h, 168h, …) or 0, got %s", f.MaxAge)
	}
	if f.MaxBackups < 0 {
		bad("decision_log.file.max_backups must not be negative, got %d", f.MaxBackups)
	}
	s := c.RedisStream
	if s.MaxLen < 1 || s.MaxLen > maxStreamLen {
		bad("decision_log.redis_stream.maxlen must be between 1 and %d, got %d", int64(maxStreamLen), s.MaxLen)
	}
	if s.Timeout <= 0 {
		bad("decision_log.redis_stream.timeout must be positive, got %s", s.Timeout)
	}
	return errors.Join(errs...)
}

// HashKey returns the key customer ids are hashed with: the value of
// TOUCHPOINT_DECISION_LOG_KEY (getenv reads it), else the contents of
// hash_key_file with surrounding white space trimmed. It is nil when
// hashing is off, and an error when hashing is on without a key of at
// least 16 bytes.
func (c Config) HashKey(getenv func(string) string) ([]byte, error) {
	if !c.HashCustomerIDs {
		return nil, nil
	}
	key := []byte(getenv(KeyEnv))
	from := KeyEnv
	if len(key) == 0 && c.HashKeyFile != "" {
		b, err := os.ReadFile(c.HashKeyFile)
		if err != nil {
			return nil, fmt.Errorf("decision_log.hash_key_file: %w", err)
		}
		key, from = []byte(strings.TrimSpace(string(b))), "decision_log.hash_key_file"
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("decision_log.hash_customer_ids needs a key: set %s or decision_log.hash_key_file", KeyEnv)
	}
	if len(key) < minHashKey {
		return nil, fmt.Errorf("the decision log hashing key (%s) must be at least %d bytes", from, minHashKey)
	}
	return key, nil
}
