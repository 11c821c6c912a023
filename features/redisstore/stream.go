package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// AppendStream adds one entry per value to the stream key, as field=value,
// trimming the stream to about maxLen entries (XADD key MAXLEN ~ maxLen * …),
// all in one pipelined round trip. It is meant for logs such as the
// decision log, which count their own failures: it bypasses the circuit
// breakers, so a log that cannot be written never refuses the store's
// writes, and it is not counted in Stats.
func (s *Store) AppendStream(ctx context.Context, key string, maxLen int64, field string, values [][]byte) error {
	if len(values) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, v := range values {
			p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: maxLen, Approx: true, Values: []any{field, v}})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot append to the Redis stream %q: %w", key, err)
	}
	return nil
}
