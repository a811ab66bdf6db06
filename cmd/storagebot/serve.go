package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/handlers"
	"github.com/storagebot/storagebot/internal/botcomment"
	"github.com/storagebot/storagebot/internal/dashboard"
	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/reconcile"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/server"
	"github.com/storagebot/storagebot/internal/setup"
	"github.com/storagebot/storagebot/internal/status"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/rollout"
)

// loadServeConfig resolves the server configuration of a server with an App (see loadServe).
func loadServeConfig(args []string, stderr io.Writer, lookup func(string) (string, bool)) (server.Config, error) {
	cfg, setupMode, err := loadServe(args, stderr, lookup)
	if err == nil && setupMode {
		err = cfg.Validate() // names the missing credentials
	}
	return cfg, err
}

// loadServe resolves the server configuration: defaults < config file < environment < flags. With no App
// credential set anywhere, the credentials file written by setup mode supplies them; without that file,
// setupMode is true and only the settings setup mode needs are validated.
func loadServe(args []string, stderr io.Writer, lookup func(string) (string, bool)) (cfg server.Config, setupMode bool, err error) {
	cfg, err = parseServeFlags(args, stderr, lookup)
	if err != nil {
		return cfg, false, err
	}
	if cfg.CredentialsFile == "" {
		if cfg.CredentialsFile, err = setup.DefaultPath(); err != nil && !cfg.HasAppCredentials() {
			return cfg, false, err
		}
	}
	if !cfg.HasAppCredentials() {
		creds, err := setup.Load(cfg.CredentialsFile)
		if err != nil {
			return cfg, false, err
		}
		if creds == nil {
			return cfg, true, cfg.ValidateServer()
		}
		applyCredentials(&cfg, creds)
	}
	return cfg, false, cfg.Validate()
}

// applyCredentials puts an App's credentials into the configuration.
func applyCredentials(cfg *server.Config, c *setup.Credentials) {
	cfg.GitHub.App.IntegrationID = c.AppID
	cfg.GitHub.App.PrivateKey = c.PEM
	cfg.GitHub.App.WebhookSecret = c.WebhookSecret
	cfg.GitHub.OAuth.ClientID = c.ClientID
	cfg.GitHub.OAuth.ClientSecret = c.ClientSecret
}

// parseServeFlags reads the flags, the config file and the environment, without validating.
func parseServeFlags(args []string, stderr io.Writer, lookup func(string) (string, bool)) (server.Config, error) {
	cfg := server.Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration file (see deploy/config.example.yml)")
	addr := fs.String("addr", cfg.Addr, "listen address (env STORAGEBOT_ADDR)")
	logLevel := fs.String("log-level", cfg.Log.Level, "log level: debug, info, warn, error (env STORAGEBOT_LOG_LEVEL)")
	logFormat := fs.String("log-format", cfg.Log.Format, "log format: json or text (env STORAGEBOT_LOG_FORMAT)")
	queueSize := fs.Int("queue-size", cfg.Queue.Size, "events that may wait for a worker; beyond it deliveries get 503")
	workers := fs.Int("workers", cfg.Queue.Workers, "events handled at once")
	shutdown := fs.Duration("shutdown-timeout", cfg.ShutdownTimeout, "how long SIGTERM waits for queued events")
	reconcile := fs.Duration("reconcile-interval", cfg.ReconcileInterval, "how often to look for missed work (0 = only at start)")
	grace := fs.Duration("reconcile-grace", cfg.ReconcileGrace, "leave PRs updated more recently than this to their webhook (0 = none)")
	ghTimeout := fs.Duration("github-timeout", cfg.GitHubTimeout, "deadline of each request to GitHub")
	ghMaxWait := fs.Duration("github-max-wait", cfg.GitHubMaxWait, "longest one request waits for retries and rate limits; longer limits re-queue the event")
	ghSettle := fs.Duration("github-write-settle", cfg.GitHubWriteSettle, "how long a write whose answer was lost may still land on GitHub: a comment is watched for that long before posting again, a build dispatch's run before failing the build")
	readConcurrency := fs.Int("github-read-concurrency", cfg.GitHubReadConcurrency, "GitHub reads in flight at once per account; independent reads overlap within it (1 = one after another; env STORAGEBOT_GITHUB_READ_CONCURRENCY)")
	insecure := fs.Bool("insecure-skip-signature", false, "accept unsigned webhooks (local experiments only)")
	leaderElect := fs.Bool("leader-elect", false, "elect a leader through the Kubernetes Lease \"storagebot\" (namespace POD_NAMESPACE); only it runs the periodic passes")
	publicURL := fs.String("public-url", "", "where GitHub and people reach this server, e.g. https://storagebot.example.com (env STORAGEBOT_PUBLIC_URL); setup mode derives the App's URLs from it")
	credentialsFile := fs.String("credentials-file", "", "the App credentials file setup mode writes and serve reads when no App credential is set (env STORAGEBOT_CREDENTIALS_FILE; default storagebot/github-app.json in the user's config directory)")
	setupOrg := fs.String("setup-org", "", "setup mode registers the App under this organization instead of your account (env STORAGEBOT_SETUP_ORG)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configPath != "" {
		if err := server.LoadFile(*configPath, &cfg); err != nil {
			return cfg, err
		}
	}
	if err := cfg.ApplyEnv(lookup); err != nil {
		return cfg, err
	}
	// Only flags given on the command line override; their defaults must not undo the file or environment.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "addr":
			cfg.Addr = *addr
		case "log-level":
			cfg.Log.Level = *logLevel
		case "log-format":
			cfg.Log.Format = *logFormat
		case "queue-size":
			cfg.Queue.Size = *queueSize
		case "workers":
			cfg.Queue.Workers = *workers
		case "shutdown-timeout":
			cfg.ShutdownTimeout = *shutdown
		case "reconcile-interval":
			cfg.ReconcileInterval = *reconcile
		case "reconcile-grace":
			cfg.ReconcileGrace = *grace
		case "github-timeout":
			cfg.GitHubTimeout = *ghTimeout
		case "github-max-wait":
			cfg.GitHubMaxWait = *ghMaxWait
		case "github-write-settle":
			cfg.GitHubWriteSettle = *ghSettle
		case "github-read-concurrency":
			cfg.GitHubReadConcurrency = *readConcurrency
		case "insecure-skip-signature":
			cfg.InsecureSkipSignature = *insecure
		case "leader-elect":
			cfg.LeaderElect = *leaderElect
		case "public-url":
			cfg.PublicURL = *publicURL
		case "credentials-file":
			cfg.CredentialsFile = *credentialsFile
		case "setup-org":
			cfg.SetupOrg = *setupOrg
		}
	})
	return cfg, nil
}

// newLogger builds the process logger from the log configuration.
func newLogger(cfg server.LogConfig, out io.Writer) zerolog.Logger {
	if cfg.Format == "text" {
		out = zerolog.ConsoleWriter{Out: out, NoColor: true, TimeFormat: time.RFC3339}
	}
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

func runServe(ctx context.Context, args []string, _ io.Writer, stderr io.Writer) int {
	cfg, setupMode, err := loadServe(args, stderr, os.LookupEnv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "storagebot serve: %v\n", err)
		return 2
	}
	logger := newLogger(cfg.Log, stderr)
	if cfg.InsecureSkipSignature {
		logger.Warn().Msg("webhook signatures are NOT verified (--insecure-skip-signature): anyone who can reach this server can drive it")
	}
	metrics := server.NewMetrics()
	var srv *server.Server
	var stopApp func()
	if setupMode {
		srv, stopApp = setupServer(ctx, cfg, logger, metrics)
	} else {
		handlers, board, stop, err := startApp(ctx, cfg, logger, metrics)
		if err != nil {
			fmt.Fprintf(stderr, "storagebot serve: %v\n", err)
			var ce configError
			if errors.As(err, &ce) {
				return 2
			}
			return 1
		}
		srv, stopApp = server.New(cfg, logger, metrics, handlers), stop
		board.Routes(srv)
	}
	defer stopApp()
	// A SIGTERM exits 0 even when the drain timed out: the stop was asked for and done, and the work of the
	// cancelled events is finished by the reconciler of the next replica. Only failing to serve is an error.
	err = srv.ListenAndServe(ctx)
	switch {
	case errors.Is(err, server.ErrDrainTimeout):
		logger.Warn().Err(err).Msg("stopped before every queued event finished")
	case err != nil:
		logger.Error().Err(err).Msg("server stopped with an error")
		return 1
	default:
		logger.Info().Msg("stopped")
	}
	return 0
}

// setupServer is the server of setup mode: no App yet, so webhooks answer 503 while / registers one; once
// registered, the App starts in this process and the same server serves its webhooks. stop ends the App if
// it started.
func setupServer(ctx context.Context, cfg server.Config, logger zerolog.Logger, metrics *server.Metrics) (*server.Server, func()) {
	srv := server.NewUnconfigured(cfg, logger, metrics)
	var mu sync.Mutex
	stopApp := func() {}
	flow := setup.New(setup.Options{
		WebURL: cfg.GitHub.WebURL, APIURL: cfg.GitHub.V3APIURL, PublicURL: cfg.PublicURL, Org: cfg.SetupOrg,
		CredentialsPath: cfg.CredentialsFile,
		HTTPClient:      &http.Client{Timeout: cfg.GitHubTimeout},
		Complete: func(creds *setup.Credentials) error {
			appCfg := cfg
			applyCredentials(&appCfg, creds)
			if err := appCfg.Validate(); err != nil {
				return err
			}
			handlers, board, stop, err := startApp(ctx, appCfg, logger, metrics)
			if err != nil {
				return err
			}
			if err := srv.Configure(appCfg.GitHub.App.WebhookSecret, handlers); err != nil {
				stop()
				return err
			}
			board.Routes(srv)
			mu.Lock()
			stopApp = stop
			mu.Unlock()
			return nil
		},
	})
	flow.Mount(srv)
	where := cfg.PublicURL
	if where == "" {
		host, port, _ := net.SplitHostPort(cfg.Addr) // validated
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		where = "http://" + net.JoinHostPort(host, port)
	}
	logger.Warn().Str("setup_page", strings.TrimSuffix(where, "/")+"/").Str("credentials_file", cfg.CredentialsFile).
		Msg("no GitHub App configured: setup mode. Open the setup page to register the App (webhooks answer 503 until then)")
	return srv, func() {
		mu.Lock()
		stop := stopApp
		mu.Unlock()
		stop()
	}
}

// configError is a configuration that cannot run the App (exit 2).
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// startApp starts the App for a validated configuration: the GitHub clients, the handlers to serve, the
// status board (whose routes the caller mounts on its server), and the background reconciler, rollouts and
// dashboard updates; stop ends the background work.
func startApp(ctx context.Context, cfg server.Config, logger zerolog.Logger, metrics *server.Metrics) ([]githubapp.EventHandler, *status.Board, func(), error) {
	key, err := cfg.PrivateKey()
	if err != nil { // Validate already checked; kept for the types.
		return nil, nil, nil, configError{err}
	}
	clients, err := ghclient.NewClientCreator(cfg.GitHub, key, ghclient.Options{
		UserAgent: "storagebot/" + version,
		Retry: func() ghclient.RetryPolicy {
			p := ghclient.DefaultRetryPolicy()
			p.AttemptTimeout, p.MaxWait = cfg.GitHubTimeout, cfg.GitHubMaxWait
			return p
		}(),
		Observer: ghclient.Observer{
			Request: func(method, status string) { metrics.GitHubRequests.WithLabelValues(method, status).Inc() },
			Retry:   func(reason string) { metrics.GitHubRetries.WithLabelValues(reason).Inc() },
			RateLimit: func(resource string, remaining int) {
				metrics.RateLimitRemaining.WithLabelValues(resource).Set(float64(remaining))
			},
		},
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("GitHub client: %w", err)
	}
	markerKey, err := seal.FromPrivateKeyPEM(key) // the key never leaves this process, nor reaches a log
	if err != nil {
		return nil, nil, nil, configError{err}
	}
	rolloutCtx, stopRollouts := context.WithCancel(logger.With().Str("component", "rollout").Logger().WithContext(ctx))
	cache := storage.NewObjectCache(storage.DefaultCacheEntries)
	cache.SetReadConcurrency(cfg.GitHubReadConcurrency) // validated: at least 1
	waker := &rollout.Waker{}
	targets := &rollout.Targets{Wake: waker, Kube: func() (rollout.DeploymentAPI, error) {
		client, err := rollout.KubernetesClient(os.Getenv("KUBECONFIG"))
		if err != nil {
			return nil, err // not a nil *KubeClient in a non-nil interface
		}
		return client, nil
	}}
	rollouts := rollout.NewService(rolloutCtx, &rollout.Controller{Target: targets.For, Registry: &rollout.HTTPRegistry{},
		WriteSettle: cfg.GitHubWriteSettle}, cache)
	rollouts.Wake = waker
	rollouts.OnRunning = func(n int) { metrics.RolloutPasses.Set(float64(n)) }
	rechecks := &botcomment.Rechecks{OnPending: func(n int) { metrics.CommentRechecks.Set(float64(n)) }}
	app := handlers.New(handlers.Deps{Clients: clients, Cache: cache, Rollouts: rollouts, Seal: markerKey,
		AppID: cfg.GitHub.App.IntegrationID, WriteSettle: cfg.GitHubWriteSettle, Rechecks: rechecks})
	board, dashboards := statusBoard(ctx, clients, cache, app, markerKey, cfg.PublicURL, logger)
	reconciler := reconcile.NewRunner(clients, app.Promotions(), app.Checks(), cfg.ReconcileInterval, metrics.Registry)
	reconciler.Recorder = dashboards
	reconciler.Grace = cfg.ReconcileGrace
	reconciler.Rollout = rollouts.Trigger
	reconcileCtx, stopReconcile := context.WithCancel(logger.With().Str("component", "reconcile").Logger().WithContext(ctx))
	reconcileDone := make(chan struct{})
	go func() {
		defer close(reconcileDone)
		if !cfg.LeaderElect {
			reconciler.Loop(reconcileCtx)
			return
		}
		if err := leaderLoop(reconcileCtx, reconciler.Loop); err != nil {
			logger.Error().Err(err).Msg("leader election: this replica serves webhooks but never runs the periodic passes")
		}
	}()
	logger.Info().Str("version", version).Str("api", cfg.GitHub.V3APIURL).
		Int64("app_id", cfg.GitHub.App.IntegrationID).
		Int("queue_size", cfg.Queue.Size).Int("workers", cfg.Queue.Workers).
		Str("reconcile_interval", cfg.ReconcileInterval.String()).Str("reconcile_grace", cfg.ReconcileGrace.String()).Msg("starting")
	var once sync.Once
	return status.Observe(app.Handlers(), dashboards), board, func() {
		once.Do(func() {
			stopReconcile()
			<-reconcileDone
			stopRollouts()
			rollouts.Wait()
			dashboards.Close()
			if n := rechecks.Stop(); n > 0 {
				logger.Warn().Int("cancelled", n).Msg("stopping before the late looks for duplicate replies were due; a reply posted twice in the last seconds may stay so")
			}
		})
	}, nil
}

// leaderLoop runs loop only while this replica holds the Lease "storagebot" in POD_NAMESPACE, as POD_NAME
// (the hostname when unset). Every replica serves webhooks whatever the outcome.
func leaderLoop(ctx context.Context, loop func(context.Context)) error {
	client, err := rollout.KubernetesClient(os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	namespace := os.Getenv("POD_NAMESPACE")
	if namespace == "" {
		namespace = "default"
	}
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		if identity, err = os.Hostname(); err != nil {
			return fmt.Errorf("replica identity: %w", err)
		}
	}
	log := zerolog.Ctx(ctx)
	e := &rollout.Election{Client: client, Namespace: namespace, Lease: "storagebot", Identity: identity}
	return e.Run(ctx, func(ctx context.Context) {
		log.Info().Str("identity", identity).Msg("leading: running the periodic passes")
		loop(ctx)
	}, func(leader string) { log.Info().Str("leader", leader).Msg("leader elected") })
}

// statusBoard builds the status board behind /status and the dashboard updater that every handler and the
// reconciler report to (docs/architecture.md §6). Both read through the same clients and object cache as
// the handlers.
func statusBoard(ctx context.Context, clients githubapp.ClientCreator, cache *storage.ObjectCache, app *handlers.App, key seal.Key, publicURL string, logger zerolog.Logger) (*status.Board, *dashboard.Updater) {
	installations := func(ctx context.Context) ([]int64, error) {
		client, err := clients.NewAppClient()
		if err != nil {
			return nil, fmt.Errorf("app client: %w", err)
		}
		list, err := githubapi.AllPages(ctx, func(ctx context.Context, page int) ([]*github.Installation, *github.Response, error) {
			return client.Apps.ListInstallations(ctx, &github.ListOptions{Page: page, PerPage: githubapi.PerPage})
		})
		ids := make([]int64, 0, len(list))
		for _, inst := range list {
			ids = append(ids, inst.GetID())
		}
		return ids, err
	}
	board := status.NewBoard(installations, func(id int64) (status.GitHub, error) {
		client, err := clients.NewInstallationClient(id)
		if err != nil {
			return nil, fmt.Errorf("client of installation %d: %w", id, err)
		}
		return githubapi.New(client, cache), nil
	}, app.Promotions(), app.Checks())
	board.Log = logger.With().Str("component", "status").Logger()
	dashboards := &dashboard.Updater{
		Board: board, Seal: key, BotLogin: app.BotLogin,
		GitHub: func(id int64) (dashboard.GitHub, error) {
			client, err := clients.NewInstallationClient(id)
			if err != nil {
				return nil, fmt.Errorf("client of installation %d: %w", id, err)
			}
			return dashboard.Client{GH: client}, nil
		},
		Log: logger.With().Str("component", "dashboard").Logger(),
	}
	if publicURL != "" { // every dashboard links the live page
		dashboards.StatusURL = strings.TrimSuffix(publicURL, "/") + status.PagePath
	}
	dashboards.Start(ctx)
	return board, dashboards
}
