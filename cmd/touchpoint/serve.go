package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/touchpoint-dev/touchpoint/decisionlog"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/redisstore"
	"github.com/touchpoint-dev/touchpoint/rules"
	"github.com/touchpoint-dev/touchpoint/server"
	"github.com/touchpoint-dev/touchpoint/tracing"
	"github.com/touchpoint-dev/touchpoint/workbench"
)

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "config file; flags below override it")
	addr := fs.String("addr", "", "listen address, e.g. :8080 or 127.0.0.1:0")
	rulesDir := fs.String("rules", "", "rules directory")
	schema := fs.String("schema", "", "feature schema file")
	customers := fs.String("customers", "", "customers JSON Lines file for the embedded store")
	redisURL := fs.String("redis", "", "Redis URL (redis://host:6379/0, redis+cluster://h1:7000,h2:7001); replaces the embedded store")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	deliverStdout := fs.Bool("deliver-stdout", false, "print what triggers would send to standard output instead of delivering it (demos)")
	timeScale := fs.Float64("time-scale", 0, "divide every trigger's delay by this (60: two hours pass in two minutes; demos)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: touchpoint serve [flags]\n\nServes POST /v1/decide and the health, metrics and admin endpoints.\nSIGHUP, POST /admin/reload and edits in the rules directory reload the rules;\nSIGTERM drains in-flight requests and exits.\n\nEvery config key can also be set by an environment variable named after\nits path: TOUCHPOINT_SERVER_ADDR sets server.addr (\"touchpoint config env\"\nlists them all). Flags override variables, variables override the file.\nThe admin key may also come from TOUCHPOINT_ADMIN_KEY.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	cfg, err := loadConfigEnv(*configPath, explicit["config"], envLookup)
	if err != nil {
		return err
	}
	// Without --config a missing default file is not an error (flags and
	// built-in defaults can be enough), but it is worth a log line.
	_, statErr := os.Stat(*configPath)
	configMissing := !explicit["config"] && statErr != nil
	override := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	override(&cfg.Server.Addr, *addr)
	override(&cfg.Rules.RulesDir, *rulesDir)
	override(&cfg.Rules.SchemaPath, *schema)
	override(&cfg.Features.Customers, *customers)
	override(&cfg.Redis.URL, *redisURL)
	override(&cfg.Log.Level, *logLevel)
	if *timeScale != 0 {
		cfg.Triggers.TimeScale = *timeScale
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("invalid config: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	paths := []pathSetting{{"rules.dir (--rules)", cfg.Rules.RulesDir}, {"rules.schema (--schema)", cfg.Rules.SchemaPath}}
	if cfg.Redis.URL == "" {
		paths = append(paths, pathSetting{"features.customers (--customers)", cfg.Features.Customers})
	}
	if err := checkPaths(paths...); err != nil {
		if configMissing {
			return fmt.Errorf("cannot start: %w (and there is no config file %s there either)", err, *configPath)
		}
		return fmt.Errorf("cannot start: %w", err)
	}

	// Take the signals before anything is served, so a SIGTERM that
	// arrives during start-up still shuts down cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	level, _ := zerolog.ParseLevel(cfg.Log.Level)
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	if configMissing {
		log.Warn().Str("component", "cmd").Str("config", *configPath).Str("working_directory", workingDir()).
			Msg("no config file; serving with the built-in defaults and flags")
	}

	tracer, err := openTracer(cfg.Tracing, log)
	if err != nil {
		return err
	}
	if tracer != nil {
		// Deferred first, so it runs last: the server has stopped and
		// every span it started has ended before the queue is flushed.
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Tracing.Timeout)
			defer cancel()
			if err := tracer.Shutdown(ctx); err != nil {
				log.Warn().Str("component", "cmd").Err(err).Msg("spans still queued at exit were lost")
			}
		}()
	}

	// A record is cached whole, so the freshest feature sets its lifetime.
	if schema, err := rules.LoadSchema(cfg.Rules.SchemaPath); err == nil {
		if m := schema.MaxStaleness(); m > 0 && m < cfg.Features.Cache.TTL {
			cfg.Features.Cache.TTL = m
		}
	}
	// The store tells this node's cache about every change it makes; the
	// cache is created after the store, and before anything can write.
	var cache *features.Cache
	st, err := openCustomerStore(cfg, log, tracer, func(id string) { cache.Invalidate(id) })
	if err != nil {
		return err
	}
	defer st.close()
	cache, err = features.NewCache(st.store, cfg.Features.Cache, features.WithCacheLogger(log))
	if err != nil {
		return fmt.Errorf("cannot start feature cache: %w", err)
	}
	defer cache.Close()
	writer := st.writer
	engOpts := []engine.Option{engine.WithBudgets(st.budgets), engine.WithWriter(writer), engine.WithTallies(st.tallies),
		engine.WithAnonymousPrefixes(cfg.Features.AnonymousPrefixes...)}
	// Set only when tracing is on: a nil *tracing.Tracer in the
	// interface would not be nil.
	var reqTracer server.RequestTracer
	if tracer != nil {
		engOpts = append(engOpts, engine.WithTracer(tracer))
		reqTracer = tracer
	}
	eng, err := engine.New(cfg.Rules, cache, log, engOpts...)
	if err != nil {
		// The rule errors carry carets over several lines: print them whole,
		// then fail with one line.
		fmt.Fprintln(stderr, err.Error())
		return fmt.Errorf("cannot start: the rules in %q do not load", cfg.Rules.RulesDir)
	}
	// A mistyped variable would otherwise be ignored without a word.
	secrets := map[string]bool{}
	for _, d := range eng.Ruleset().Deliveries {
		if d.Webhook != nil {
			secrets[d.Webhook.SecretEnv] = true
		}
	}
	for _, name := range unknownEnv(os.Environ(), secrets) {
		log.Warn().Str("component", "cmd").Str("variable", name).
			Msg("environment variable names no config key and is not read (see touchpoint config env)")
	}
	dlog, err := openDecisionLog(cfg, st, log)
	if err != nil {
		return err
	}
	if dlog != nil {
		// Deferred after the store's close, so it runs before it: the
		// queue drains into the Redis stream while the store is still open,
		// and after the server has stopped deciding.
		defer func() {
			if err := dlog.Close(); err != nil {
				log.Warn().Str("component", "cmd").Err(err).Msg("decision log closed with lines lost")
			}
		}()
	}
	var redis *redisstore.Store
	if rs, ok := st.store.(*redisstore.Store); ok {
		redis = rs
	}
	trig, err := setupTriggers(cfg, eng, redis, dlog, stdout, *deliverStdout, log)
	if err != nil {
		return err
	}
	srv := server.New(cfg.Server, eng, server.Options{
		Logger:       log,
		FeatureCache: cache,
		Customers:    writer,
		Schema:       eng,
		StoreStats:   st.stats,
		OverlayStats: st.overlayStats,
		DecisionLog:  dlog,
		Experiments:  eng,
		Workbench:    workbench.New(workbenchConfig(cfg), eng, cache, log),
		OnEvents:     trig.runner.Observe,
		TriggerStats: trig.stats,
		Tracer:       reqTracer,
	})
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Server.Addr, err)
	}
	log.Info().Str("component", "cmd").Str("addr", ln.Addr().String()).Str("store", st.name).
		Str("ruleset", eng.Status().Version).Msg("touchpoint serving")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx, ln) })
	g.Go(func() error { return eng.Watch(gctx) })
	g.Go(func() error { return eng.Learn(gctx) })
	g.Go(func() error { return trig.runner.Run(gctx) })
	if st.subscribe != nil {
		g.Go(func() error { return st.subscribe(gctx, cache.Invalidate) })
	}
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				log.Info().Str("component", "cmd").Msg("reload requested by SIGHUP")
				_ = eng.Reload() // logged and kept for /admin/ruleset
			}
		}
	})
	err = g.Wait()
	log.Info().Str("component", "cmd").Msg("touchpoint stopped")
	return err
}

// customerStore is the system of record serve runs on: Redis when
// configured, else the embedded store with an in-process overlay.
type customerStore struct {
	name    string
	store   features.Store
	writer  features.Writer
	budgets features.Budgets
	// tallies keeps the counters experiments and bandits learn from.
	tallies features.Tallies
	stats   func() server.StoreStats
	// overlayStats is the embedded store's, nil for Redis.
	overlayStats func() features.OverlayStats
	// stream carries the decision log's Redis Stream; nil without Redis.
	stream    decisionlog.StreamAppender
	subscribe func(ctx context.Context, onInvalidate func(string)) error
	close     func()
}

// openTracer builds the tracer when tracing is enabled, and returns nil
// otherwise.
func openTracer(cfg tracing.Config, log zerolog.Logger) (*tracing.Tracer, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	tr, err := tracing.New(cfg, tracing.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("cannot start tracing: %w", err)
	}
	log.Info().Str("component", "cmd").Str("endpoint", cfg.Endpoint).Float64("sample_ratio", cfg.SampleRatio).
		Msg("tracing decides")
	return tr, nil
}

// openCustomerStore opens the configured store. invalidate drops a changed
// customer from this node's cache; the store's writer calls it after every
// write and whenever a change reaches the store by other means. tracer,
// when not nil, traces the Redis calls of traced requests.
func openCustomerStore(cfg config, log zerolog.Logger, tracer *tracing.Tracer, invalidate func(customerID string)) (*customerStore, error) {
	if cfg.Redis.URL != "" {
		// The client library's own log lines go through zerolog; its
		// logger is process-wide, and this is the process's one store.
		redisstore.SetClientLogger(log)
		opts := []redisstore.Option{redisstore.WithLogger(log)}
		if tracer != nil {
			opts = append(opts, redisstore.WithHooks(tracer.RedisHook()))
		}
		rs, err := redisstore.Open(cfg.Redis, opts...)
		if err != nil {
			return nil, fmt.Errorf("cannot open Redis store: %w", err)
		}
		// Dial before serving so the first decisions do not pay for it;
		// Redis being down is not fatal, decisions degrade until it is back.
		pctx, cancel := context.WithTimeout(context.Background(), cfg.Redis.DialTimeout)
		if err := rs.Ping(pctx); errors.Is(err, redisstore.ErrAuth) {
			// A wrong password is a mistake to fix, not an outage to ride out.
			cancel()
			_ = rs.Close()
			return nil, fmt.Errorf("cannot open Redis store: %w (the password comes from TOUCHPOINT_REDIS_PASSWORD, redis.password or redis.password_file)", err)
		} else if err != nil {
			log.Warn().Str("component", "cmd").Err(err).Msg("redis is not answering yet; decisions are degraded until it does")
		}
		cancel()
		log.Info().Str("component", "cmd").Str("redis", cfg.Redis.RedactedURL()).Msg("feature store: redis")
		return &customerStore{
			name: "redis", store: rs, writer: features.Invalidating(rs, invalidate), budgets: rs, tallies: rs,
			stats: func() server.StoreStats {
				s := rs.Stats()
				return server.StoreStats{State: rs.State(), Calls: s.Calls, Failures: s.Failures, Rejected: s.Rejected,
					BreakerOpens: s.BreakerOpens, Invalidations: s.Invalidations,
					BadValues: s.BadValues, Resubscribes: s.Resubscribes, DialFailures: s.DialFailures, Panics: s.Panics}
			},
			subscribe: rs.Subscribe,
			stream:    rs,
			close:     func() { _ = rs.Close() },
		}, nil
	}
	mem, err := openStore(cfg.Features.Customers)
	if err != nil {
		return nil, err
	}
	st := &customerStore{name: fmt.Sprintf("embedded (%d customers)", mem.Len()), close: func() {}}
	// The overlay keeps what the API writes (features, consent, events,
	// erasures, budgets) on top of the embedded store, within bounds; it
	// reports written customers, and those its bounds dropped, to the cache.
	overlay, err := features.NewBoundedOverlay(mem, invalidate, cfg.Features.Overlay)
	if err != nil {
		return nil, err
	}
	st.store, st.writer, st.budgets, st.tallies = overlay, overlay, overlay, overlay
	st.overlayStats = overlay.Stats
	return st, nil
}

func openStore(path string) (*features.MemoryStore, error) {
	if path == "" {
		return features.LoadJSONL(strings.NewReader(""), "no customers")
	}
	return features.OpenJSONL(path)
}

// openDecisionLog starts the decision log when it is enabled; nil when not.
// The hashing key comes from the environment or a key file, never the
// configuration file.
func openDecisionLog(cfg config, st *customerStore, log zerolog.Logger) (*decisionlog.Logger, error) {
	if !cfg.DecisionLog.Enabled {
		return nil, nil
	}
	key, err := cfg.DecisionLog.HashKey(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("cannot start the decision log: %w", err)
	}
	dl, err := decisionlog.New(cfg.DecisionLog, decisionlog.Options{Logger: log, HashKey: key, Stream: st.stream})
	if err != nil {
		return nil, fmt.Errorf("cannot start the decision log: %w", err)
	}
	ev := log.Info().Str("component", "cmd").Float64("sample", cfg.DecisionLog.Sample).Bool("hash_customer_ids", cfg.DecisionLog.HashCustomerIDs)
	if p := cfg.DecisionLog.File.Path; p != "" {
		ev = ev.Str("file", p)
	}
	if k := cfg.DecisionLog.RedisStream.Key; k != "" {
		ev = ev.Str("redis_stream", k)
	}
	ev.Msg("decision log on")
	return dl, nil
}

// workbenchConfig points the playground's drafts at the served rules and
// its replays at the decision log file, when decisions are logged to one.
func workbenchConfig(cfg config) workbench.Config {
	wc := workbench.Config{RulesDir: cfg.Rules.RulesDir, SchemaPath: cfg.Rules.SchemaPath}
	if cfg.DecisionLog.Enabled {
		wc.DecisionLog = cfg.DecisionLog.File.Path
	}
	return wc
}
