package main

import (
	"context"
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

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
	"github.com/touchpoint-dev/touchpoint/server"
)

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "config file; flags below override it")
	addr := fs.String("addr", "", "listen address, e.g. :8080 or 127.0.0.1:0")
	rulesDir := fs.String("rules", "", "rules directory")
	schema := fs.String("schema", "", "feature schema file")
	customers := fs.String("customers", "", "customers JSON Lines file for the embedded store")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: touchpoint serve [flags]\n\nServes POST /v1/decide and the health, metrics and admin endpoints.\nSIGHUP, POST /admin/reload and edits in the rules directory reload the rules;\nSIGTERM drains in-flight requests and exits. The admin key may also come from\nTOUCHPOINT_ADMIN_KEY.\n\nFlags:")
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
	cfg, err := loadConfig(*configPath, explicit["config"])
	if err != nil {
		return err
	}
	override := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	override(&cfg.Server.Addr, *addr)
	override(&cfg.Rules.RulesDir, *rulesDir)
	override(&cfg.Rules.SchemaPath, *schema)
	override(&cfg.Features.Customers, *customers)
	override(&cfg.Log.Level, *logLevel)
	override(&cfg.Server.AdminKey, os.Getenv("TOUCHPOINT_ADMIN_KEY"))
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("invalid config: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
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

	store, err := openStore(cfg.Features.Customers)
	if err != nil {
		return err
	}
	// A record is cached whole, so the freshest feature sets its lifetime.
	if schema, err := rules.LoadSchema(cfg.Rules.SchemaPath); err == nil {
		if m := schema.MaxStaleness(); m > 0 && m < cfg.Features.Cache.TTL {
			cfg.Features.Cache.TTL = m
		}
	}
	// The overlay keeps what the API writes (features, consent, events,
	// erasures, budgets) on top of the embedded store, and drops the
	// changed customer from the cache on every write.
	var cache *features.Cache
	overlay := features.NewOverlay(store, func(id string) { cache.Invalidate(id) })
	cache, err = features.NewCache(overlay, cfg.Features.Cache)
	if err != nil {
		return fmt.Errorf("cannot start feature cache: %w", err)
	}
	defer cache.Close()
	eng, err := engine.New(cfg.Rules, cache, log, engine.WithBudgets(overlay), engine.WithWriter(overlay))
	if err != nil {
		// The rule errors carry carets over several lines: print them whole,
		// then fail with one line.
		fmt.Fprintln(stderr, err.Error())
		return fmt.Errorf("cannot start: the rules in %q do not load", cfg.Rules.RulesDir)
	}
	srv := server.New(cfg.Server, eng, server.Options{
		Logger: log,
		CacheStats: func() (uint64, uint64) {
			s := cache.Stats()
			return s.Hits, s.Misses
		},
		Customers: overlay,
		Schema:    eng,
	})
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Server.Addr, err)
	}
	log.Info().Str("component", "cmd").Str("addr", ln.Addr().String()).Int("customers", store.Len()).
		Str("ruleset", eng.Status().Version).Msg("touchpoint serving")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx, ln) })
	g.Go(func() error { return eng.Watch(gctx) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				_ = eng.Reload() // logged and kept for /admin/ruleset
			}
		}
	})
	err = g.Wait()
	log.Info().Str("component", "cmd").Msg("touchpoint stopped")
	return err
}

func openStore(path string) (*features.MemoryStore, error) {
	if path == "" {
		return features.LoadJSONL(strings.NewReader(""), "no customers")
	}
	return features.OpenJSONL(path)
}
