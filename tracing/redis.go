package tracing

import (
	"context"
	"errors"
	"net"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of Redis spans, after OpenTelemetry's database
// conventions. Neither keys nor arguments are recorded: every key names a
// customer.
const (
	AttrDBSystem    = "db.system.name"
	AttrDBOperation = "db.operation.name"
	AttrDBBatchSize = "db.operation.batch.size"
)

// RedisHook traces the Redis calls made on behalf of a traced request: a
// span "redis.<command>" per command (redis.hgetall, redis.evalsha) and
// one "redis.pipeline" per pipeline, as children of the span in the
// call's context. Calls outside a recorded span (the learning loop,
// invalidations, unsampled requests) are passed straight through.
//
// The hook lives here rather than in the Redis store so that the store
// does not depend on OpenTelemetry; the store takes any redis.Hook.
func (t *Tracer) RedisHook() redis.Hook { return redisHook{t: t} }

type redisHook struct{ t *Tracer }

func (redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmd)
		}
		name := cmd.Name()
		ctx, span := h.t.tracer.Start(ctx, "redis."+name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String(AttrDBSystem, "redis"), attribute.String(AttrDBOperation, name)))
		err := next(ctx, cmd)
		endRedis(span, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmds)
		}
		ctx, span := h.t.tracer.Start(ctx, SpanRedisPipeline, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String(AttrDBSystem, "redis"), attribute.String(AttrDBOperation, "pipeline"), attribute.Int(AttrDBBatchSize, len(cmds))))
		err := next(ctx, cmds)
		endRedis(span, err)
		return err
	}
}

// endRedis ends a Redis span, marking it failed for any error but a
// missing key. The error's text is not kept (a script error can quote a
// key); its kind is.
func endRedis(span trace.Span, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		kind := "redis_error"
		var ne net.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
			kind = "timeout"
		case errors.Is(err, context.Canceled):
			kind = "canceled"
		}
		span.SetAttributes(attribute.String("error.type", kind))
		span.SetStatus(codes.Error, kind)
	}
	span.End()
}
