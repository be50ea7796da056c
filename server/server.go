package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/httpguard"
	"github.com/fleetvault/fleetvault/service"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/repokey"
	"github.com/fleetvault/fleetvault/dispatch"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/schedule"
)

// Options configure a server. MBR is required; the zero value of the rest
// runs an embedded broker on 127.0.0.1:1883 and no HTTP API.
type Options struct {
	MBR         string // the master backup record of the installation
	SiteAddress string // this host's address, to detect DR mode (see catalog.Options)
	// Key is the repository key of an encrypted installation (see
	// catalog.Options.Key); nil for one in clear.
	Key *repokey.Key

	// BrokerURL selects an external MQTT broker (mqtt://host:port or
	// mqtts://host:port); BrokerUser and BrokerPassword are the server's
	// identity there. Empty runs the embedded broker.
	BrokerURL      string
	BrokerUser     string
	BrokerPassword string
	BrokerTLS      *tls.Config
	// Shards are further brokers, each holding the devices whose identifiers
	// name it (broker:NAME); devices without one stay on the broker above.
	Shards []MQTTShard
	// ShardCredentialsDir, when set, is where the server keeps each shard's
	// credentials file (NAME.credentials.yaml: its devices and the server
	// identities) for fleetvault broker, rewritten every
	// ShardCredentialsEvery (default DefaultShardCredentialsEvery) when the
	// resource database changed.
	ShardCredentialsDir   string
	ShardCredentialsEvery time.Duration

	// The embedded broker's listeners; MQTTAddr defaults to 127.0.0.1:1883.
	MQTTAddr       string
	MQTTTLSAddr    string
	CertFile       string
	KeyFile        string
	SelfSigned     bool
	WSAddr         string
	AllowAnonymous bool

	CoAPListen string // local UDP address of the CoAP transport; "" any free port
	// InsecureCoAP lets the CoAP transport speak plain CoAP (coap://) to
	// devices, for a lab; without it only coaps:// (DTLS) is spoken.
	InsecureCoAP bool

	// HTTPAddr serves the HTTP API (Handler) there when set; TokenFile is its
	// API token file, by default api-tokens.yaml beside the MBR.
	HTTPAddr  string
	TokenFile string
	// The API speaks TLS with HTTPCertFile and HTTPKeyFile, or with a
	// self-signed pair kept beside the MBR (HTTPSelfSigned); else plain HTTP,
	// with a warning when HTTPAddr is not a loopback address.
	HTTPCertFile   string
	HTTPKeyFile    string
	HTTPSelfSigned bool
	// MetricsOpen serves /metrics without a token to every address; by
	// default only loopback clients need none.
	MetricsOpen bool
	// HTTPReadTimeout bounds reading a whole request, body included; 0 is
	// httpguard's default (60 s).
	HTTPReadTimeout time.Duration
	// HTTPThrottle limits failed authentications per client address; the
	// zero value takes httpguard's defaults.
	HTTPThrottle httpguard.ThrottleOptions

	// Events, when set, receives what people must be told about instead of
	// the notifications' sink (Notifications; tests pass a recorder):
	// a scheduled job failed, a device missed its RPO, a certification
	// reminder; nil logs events without delivering them.
	Events service.EventSink
	// Clock drives the certification sweep and dates certifications; nil is
	// the wall clock. SweepEvery is the sweep's interval (default hourly);
	// negative runs no sweep.
	Clock      schedule.Clock
	SweepEvery time.Duration
	// ScheduleClock drives the scheduler (schedules and RPO checks) and
	// stamps backups; nil is the system clock. Tests pass a
	// scheduletest.Clock.
	ScheduleClock schedule.Clock
	// RPOInterval is how often every device's RPO is checked between runs;
	// 0 means a minute.
	RPOInterval time.Duration
	// Notify configures notifications and the history of job outcomes
	// (package dispatch); the server fills in its Catalog and Logger. Its
	// zero value sends webhooks only (no SMTP server: email off).
	Notify dispatch.Options

	Logger *slog.Logger
}

// Server is a running installation.
type Server struct {
	Catalog *catalog.Catalog
	Engine  *grouprestore.Engine
	Service *service.Service // every operation, authorized: what the API and an embedder call
	Broker  *broker.Broker   // nil with an external broker
	// Notifications routes events to people and writes the history of job
	// outcomes (package dispatch).
	Notifications *dispatch.Sink

	MQTT   *mqtt.Transport // the default broker
	Shards *mqtt.Shards    // routes MQTT requests over MQTT and Options.Shards
	CoAP   *coap.Transport

	brokerURL string
	api       *apiState  // HTTP API and metrics (api_server.go)
	sched     *scheduler // schedules and RPO checks (schedules.go)
	now       func() time.Time
	log       *slog.Logger
	closers   []func() error
}

// Start opens the installation and starts its parts, then resumes the jobs
// the journal says were running. On error, whatever was started is stopped.
func Start(ctx context.Context, opts Options) (s *Server, err error) {
	s = &Server{log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	if opts.MBR == "" {
		return nil, errors.New("no master backup record: give --mbr (or mbr: in the configuration), or create one with fleetvault init")
	}
	s.now = time.Now
	if opts.ScheduleClock != nil {
		s.now = opts.ScheduleClock.Now
	}
	s.Catalog, err = catalog.Open(opts.MBR, catalog.Options{Logger: s.log, SiteAddress: opts.SiteAddress, BatchDelay: -1, Key: opts.Key, Now: s.now}) // the engine groups its writes
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, s.Catalog.Close)
	if err = s.startNotifications(opts); err != nil {
		return s, err
	}
	s.initAPI(opts)

	if opts.BrokerURL == "" {
		// With the embedded broker the server speaks to it in process: no
		// TCP connection, and no client queue for thousands of answers to fill.
		if err = s.startBroker(opts); err != nil {
			return s, err
		}
		s.MQTT, err = mqtt.NewInlineTransport(s.Broker, 1, s.log)
	} else {
		s.brokerURL = opts.BrokerURL
		s.MQTT, err = mqtt.NewTransport(ctx, mqtt.TransportOptions{BrokerURL: s.brokerURL, Username: opts.BrokerUser, Password: opts.BrokerPassword, TLSConfig: opts.BrokerTLS, Logger: s.log})
	}
	if err != nil {
		return s, fmt.Errorf("connect to the MQTT broker at %s: %w", s.brokerURL, err)
	}
	s.closers = append(s.closers, s.MQTT.Close)
	if err = s.startShards(ctx, opts.Shards); err != nil {
		return s, err
	}
	if opts.ShardCredentialsDir != "" && len(opts.Shards) > 0 {
		every := opts.ShardCredentialsEvery
		if every <= 0 {
			every = DefaultShardCredentialsEvery
		}
		if _, err := ExportShardCredentials(s.Catalog, opts.ShardCredentialsDir, shardNames(opts.Shards)); err != nil {
			return s, err
		}
		exportCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.exportShardCredentials(exportCtx, opts.ShardCredentialsDir, opts.Shards, every)
		}()
		s.closers = append(s.closers, func() error { stop(); <-done; return nil })
	}
	if opts.InsecureCoAP {
		s.log.Warn("plain CoAP allowed (--insecure-coap): anyone on the network can read and write the settings of coap:// devices; use it in a lab only")
	}
	s.CoAP, err = coap.NewTransport(coap.TransportOptions{Listen: opts.CoAPListen, Logger: s.log,
		Keys: CoAPKeys(s.Catalog), Insecure: opts.InsecureCoAP})
	if err != nil {
		return s, fmt.Errorf("start the CoAP transport: %w", err)
	}
	s.closers = append(s.closers, s.CoAP.Close)

	store := grouprestore.NewCatalogStore(s.Catalog)
	mbr := s.Catalog.MBR()
	s.Engine, err = grouprestore.New(grouprestore.Options{
		JournalPath: mbr.Path(mbr.Journal),
		Catalog:     store,
		Directory:   store,
		Transports: s.instrument(map[string]agent.Transport{
			"": s.Shards, "mqtt": s.Shards, "mqtts": s.Shards,
			"coap": s.CoAP, "coaps": s.CoAP,
		}),
		Logger: s.log,
		Now:    s.now,
	})
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, s.Engine.Close)
	jobs, err := s.Engine.Resume(ctx)
	if err != nil {
		return s, fmt.Errorf("resume jobs: %w", err)
	}
	s.trackJobs(jobs)
	if opts.Clock == nil {
		opts.Clock = schedule.SystemClock{}
	}
	if err := s.startHTTP(opts); err != nil {
		return s, err
	}
	if opts.SweepEvery >= 0 {
		s.startCertificationSweep(opts.Clock, opts.SweepEvery)
	}
	if err := s.startScheduler(opts); err != nil {
		return s, err
	}
	return s, nil
}

// startNotifications starts the event sink: notifications and history.
func (s *Server) startNotifications(opts Options) error {
	no := opts.Notify
	no.Catalog, no.Logger = s.Catalog, s.log
	sink, err := dispatch.New(no)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	if !sink.EmailOn() {
		s.log.Info("email notifications are off: no SMTP server configured (notify.smtp.host); webhooks are on")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sink.Run(ctx) // ends with ctx
	}()
	s.Notifications = sink
	s.closers = append(s.closers, func() error {
		err := sink.Close()
		cancel()
		<-done
		return err
	})
	return nil
}

// startBroker runs the embedded broker, authenticating devices against the
// resource database. The server itself needs no credentials: it publishes
// and subscribes in process.
func (s *Server) startBroker(opts Options) error {
	addr := opts.MQTTAddr
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	var err error
	s.Broker, err = broker.New(broker.Options{
		TCPAddr: addr, TLSAddr: opts.MQTTTLSAddr, CertFile: opts.CertFile, KeyFile: opts.KeyFile,
		SelfSigned: opts.SelfSigned, WSAddr: opts.WSAddr, AllowAnonymous: opts.AllowAnonymous,
		Credentials: &credentials{c: s.Catalog},
		Logger:      s.log,
	})
	if err != nil {
		return err
	}
	if err := s.Broker.Start(context.Background()); err != nil { // Close stops it
		return fmt.Errorf("start the embedded MQTT broker on %s: %w", addr, err)
	}
	s.closers = append(s.closers, s.Broker.Close)
	s.brokerURL = "mqtt://" + hostPort(s.Broker.Addr())
	return nil
}

func hostPort(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "[::]:") || strings.HasPrefix(s, "0.0.0.0:") {
		_, port, _ := net.SplitHostPort(s)
		return net.JoinHostPort("127.0.0.1", port)
	}
	return s
}

// BrokerURL is where devices connect: the embedded broker's address, or the
// external broker's URL.
func (s *Server) BrokerURL() string { return s.brokerURL }

// Close stops everything in the reverse order it started. Running jobs stay
// resumable in the journal.
func (s *Server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}
