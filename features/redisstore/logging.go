package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// SetClientLogger sends the Redis client library's own log lines (failed
// dials, dropped connections) to log as warnings, at most a few per
// minute, instead of as plain text on stderr. The library's logger is
// process-wide, so the program calls this once, at start, for every Store.
func SetClientLogger(log zerolog.Logger) {
	redis.SetLogger(newClientLogger(log))
}

func newClientLogger(log zerolog.Logger) clientLogger {
	return clientLogger{log: log.With().Str("component", "redis-client").Logger().
		Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute})}
}

// clientLogger adapts zerolog to the client library's Printf logging.
type clientLogger struct{ log zerolog.Logger }

func (l clientLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Msg(fmt.Sprintf(format, v...))
}
