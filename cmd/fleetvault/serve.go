package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/fleetvault/fleetvault/dispatch"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/server"
)

// serveKeys maps configuration keys (fleetvault.yaml, FLEETVAULT_* variables)
// to serve's flags. Flags win over the environment, which wins over the file.
var serveKeys = []struct{ key, flag string }{
	{"http.addr", "http"},
	{"http.token_file", "token-file"},
	{"http.cert", "http-cert"},
	{"http.key", "http-key"},
	{"http.self_signed", "http-self-signed"},
	{"http.metrics_open", "metrics-open"},
	{"http.read_timeout", "http-read-timeout"},
	{"broker.addr", "mqtt"},
	{"broker.tls_addr", "mqtt-tls"},
	{"broker.cert", "cert"},
	{"broker.key", "key"},
	{"broker.self_signed", "tls-self-signed"},
	{"broker.ws_addr", "ws"},
	{"broker.allow_anonymous", "allow-anonymous"},
	{"broker.url", "broker-url"},
	{"broker.user", "broker-user"},
	{"broker.password", "broker-password"},
	{"broker.ca", "broker-ca"},
	{"coap.listen", "coap"},
	{"coap.insecure", "insecure-coap"},
	{"site_address", "site-address"},
	{"notify.smtp.host", "smtp-host"},
	{"notify.smtp.port", "smtp-port"},
	{"notify.smtp.username", "smtp-user"},
	{"notify.smtp.password_file", "smtp-password-file"},
	{"notify.smtp.from", "smtp-from"},
	{"notify.smtp.ca", "smtp-ca"},
	{"notify.digest_hour", "digest-hour"},
	{"notify.webhook_timeout", "webhook-timeout"},
}

func newServeCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve --mbr FILE [--http ADDR] [--mqtt ADDR] [--broker-url URL ...]",
		Short: "Run the Fleetvault server: broker, transports, job engine, HTTP API and web view (BUI)",
		Long: `serve runs an installation as one process: the catalog and resource database
named by the MBR, the embedded MQTT broker (or a connection to an external one
with --broker-url), the MQTT and CoAP transports, the group-restore engine and
the HTTP API (docs/api.md) with Prometheus metrics on /metrics, and on the
same address under / the Backup User Interface (BUI): the data owners' web
view, where a user of fleetvault user add logs on with their name and
password (open http://127.0.0.1:8686/ with the default --http). BUI sessions
live in memory: a restart of serve logs everyone out.

It runs the backup schedules (fleetvault schedule): each schedule's backup,
then its backup group's retention; runs missed while the server was down run
once at start. It checks every scheduled device's RPO every minute.

Once an hour, and at start, the server applies the certification policies
(fleetvault certify policy): certifications of critical devices lapse, and
owners of unknown backups are reminded. It also runs the twins of test
restores (fleetvault certify test BACKUP --into twin) on its embedded broker.

Jobs that were running when the server last stopped are resumed. SIGINT or
SIGTERM stops the server gracefully: running jobs stop where they stand and
stay resumable in the journal.

The API needs a token: fleetvault init creates an admin token, and
fleetvault token create --name NAME [--user USER] makes more; a token acts as
its user, with the user's role (admin, operator, or owner: a data owner who
sees only what fleetvault owner assign gives them). Every change is in the
audit log (fleetvault audit).

The API speaks TLS with --http-cert and --http-key, or with
--http-self-signed (a certificate kept beside the MBR as api-cert.pem: give it
to clients, e.g. curl --cacert or fleetvault --cacert); without either it
speaks plain HTTP and warns when --http is not a loopback address. Every
request has header, read, write and idle timeouts and a header size limit;
an address that fails to authenticate too often is answered 429 with
Retry-After for a while, other addresses unaffected. /healthz is open;
/metrics needs no token from the server's own host (loopback) and an admin's
or operator's token elsewhere, unless --metrics-open.

Notifications (fleetvault notify set): email goes through the SMTP server of
--smtp-host (always with STARTTLS; AUTH with --smtp-user and the password in
--smtp-password-file); without --smtp-host email is off and the log says so
once, webhooks still go out. Users who chose a digest get one message a day
at --digest-hour (UTC). The history of job outcomes (fleetvault stats) is
written as jobs end and pruned daily to its retention.

Every flag has a configuration key (see fleetvault.yaml): http.addr,
broker.addr, broker.url, notify.smtp.host...`,
		Example: `  fleetvault serve --mbr /var/lib/fleetvault/fleetvault.mbr
  fleetvault serve --mbr fv/fleetvault.mbr --http 0.0.0.0:8686 --http-self-signed --mqtt-tls :8883 --tls-self-signed
  fleetvault serve --mbr fv/fleetvault.mbr --http :8686 --http-cert api.pem --http-key api-key.pem
  fleetvault serve --mbr fv/fleetvault.mbr --broker-url mqtts://emqx:8883 --broker-user fleetvault-server`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := serveConfig(a, cmd)
			if err != nil {
				return err
			}
			opts, err := serveOptions(a, v)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, a, opts)
		},
	}
	f := c.Flags()
	f.String("http", "127.0.0.1:8686", "HTTP API address (the article's BUI port); \"\" for none (config: http.addr)")
	f.String("token-file", "", "API token file (default: api-tokens.yaml beside the MBR) (config: http.token_file)")
	f.String("http-cert", "", "TLS certificate file (PEM) for the HTTP API (config: http.cert)")
	f.String("http-key", "", "TLS private key file (PEM) for the HTTP API (config: http.key)")
	f.Bool("http-self-signed", false, "serve the HTTP API over TLS with a self-signed certificate kept beside the MBR (api-cert.pem) (config: http.self_signed)")
	f.Duration("http-read-timeout", 60*time.Second, "the longest a client may take to send a whole request, body included; slower ones are cut off (config: http.read_timeout)")
	f.Bool("metrics-open", false, "serve /metrics without a token to every address, not only to loopback clients (config: http.metrics_open)")
	f.String("mqtt", "127.0.0.1:1883", "embedded broker's MQTT TCP address (config: broker.addr)")
	f.String("mqtt-tls", "", "embedded broker's MQTT over TLS address, e.g. :8883 (config: broker.tls_addr)")
	f.String("cert", "", "TLS certificate file (PEM) for --mqtt-tls (config: broker.cert)")
	f.String("key", "", "TLS private key file (PEM) for --mqtt-tls (config: broker.key)")
	f.Bool("tls-self-signed", false, "make a self-signed certificate for --mqtt-tls (config: broker.self_signed)")
	f.String("ws", "", "embedded broker's MQTT over WebSocket address (config: broker.ws_addr)")
	f.Bool("allow-anonymous", false, "let clients without credentials connect to the embedded broker (config: broker.allow_anonymous)")
	f.String("broker-url", "", "external MQTT broker, mqtt://host:port or mqtts://host:port, instead of the embedded one (config: broker.url)")
	f.String("broker-user", "", "the server's username at the external broker (config: broker.user)")
	f.String("broker-password", "", "the server's password at the external broker; prefer FLEETVAULT_BROKER_PASSWORD (config: broker.password)")
	f.String("broker-ca", "", "CA certificate file (PEM) to trust for an mqtts:// external broker (config: broker.ca)")
	f.String("coap", "", "local UDP address of the CoAP transport (default: any free port) (config: coap.listen)")
	f.Bool("insecure-coap", false, "also speak plain CoAP (coap://) to devices, unauthenticated and unencrypted: for a lab only; without it CoAP devices are reached over DTLS (coaps://) with the pre-shared key (coap_key) they were imported with (config: coap.insecure)")
	f.String("site-address", "", "this host's server address; equal to the MBR's dr_server means DR mode (config: site_address)")
	f.String("smtp-host", "", "SMTP server for email notifications; \"\" turns email off (config: notify.smtp.host)")
	f.Int("smtp-port", 587, "SMTP server port; STARTTLS is always required (config: notify.smtp.port)")
	f.String("smtp-user", "", "SMTP AUTH username; \"\" sends without AUTH (config: notify.smtp.username)")
	f.String("smtp-password-file", "", "file holding the SMTP AUTH password (config: notify.smtp.password_file)")
	f.String("smtp-from", "", "sender address of notification emails, e.g. \"Fleetvault <fleetvault@example.com>\" (config: notify.smtp.from)")
	f.String("smtp-ca", "", "CA certificate file (PEM) to trust for the SMTP server (default: the system's roots) (config: notify.smtp.ca)")
	f.Int("digest-hour", 7, "hour of the day (UTC, 0-23) daily digests are sent (config: notify.digest_hour)")
	f.Duration("webhook-timeout", 30*time.Second, "the longest one webhook request may take (config: notify.webhook_timeout)")
	return c
}

// serveConfig reads serve's keys into a viper of their own: the root's
// automatic flag bindings use flat names ("http"), which would shadow the
// nested keys of the configuration file ("http.addr").
func serveConfig(a *app, cmd *cobra.Command) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix("FLEETVAULT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	if f := a.v.ConfigFileUsed(); f != "" {
		v.SetConfigFile(f)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("configuration file %s: %v", f, err)
		}
	}
	for _, k := range serveKeys {
		if err := v.BindPFlag(k.key, cmd.Flags().Lookup(k.flag)); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// serveOptions gathers server.Options from flags, environment and file,
// refusing combinations that cannot work.
func serveOptions(a *app, v *viper.Viper) (server.Options, error) {
	mbr, err := mbrPath(a)
	if err != nil {
		return server.Options{}, err
	}
	key, err := installKey(a, mbr)
	if err != nil {
		return server.Options{}, err
	}
	o := server.Options{
		MBR: mbr, Key: key, SiteAddress: v.GetString("site_address"),
		HTTPAddr: v.GetString("http.addr"), TokenFile: v.GetString("http.token_file"),
		HTTPCertFile: v.GetString("http.cert"), HTTPKeyFile: v.GetString("http.key"), HTTPSelfSigned: v.GetBool("http.self_signed"),
		MetricsOpen: v.GetBool("http.metrics_open"), HTTPReadTimeout: v.GetDuration("http.read_timeout"),
		MQTTAddr: v.GetString("broker.addr"), MQTTTLSAddr: v.GetString("broker.tls_addr"),
		CertFile: v.GetString("broker.cert"), KeyFile: v.GetString("broker.key"), SelfSigned: v.GetBool("broker.self_signed"),
		WSAddr: v.GetString("broker.ws_addr"), AllowAnonymous: v.GetBool("broker.allow_anonymous"),
		BrokerURL: v.GetString("broker.url"), BrokerUser: v.GetString("broker.user"), BrokerPassword: v.GetString("broker.password"),
		CoAPListen: v.GetString("coap.listen"), InsecureCoAP: v.GetBool("coap.insecure"), Logger: a.log,
	}
	if (o.HTTPCertFile == "") != (o.HTTPKeyFile == "") {
		return o, usageError{errors.New("serve: --http-cert and --http-key go together")}
	}
	if o.HTTPSelfSigned && o.HTTPCertFile != "" {
		return o, usageError{errors.New("serve: give --http-cert and --http-key, or --http-self-signed, not both")}
	}
	if o.MQTTTLSAddr != "" && !o.SelfSigned && (o.CertFile == "" || o.KeyFile == "") {
		return o, usageError{errors.New("serve: --mqtt-tls needs --cert and --key, or --tls-self-signed")}
	}
	if o.MQTTTLSAddr == "" && (o.CertFile != "" || o.KeyFile != "" || o.SelfSigned) {
		return o, usageError{errors.New("serve: --cert, --key and --tls-self-signed apply to --mqtt-tls; give its address too")}
	}
	if o.BrokerURL == "" && (o.BrokerUser != "" || o.BrokerPassword != "") {
		return o, usageError{errors.New("serve: --broker-user and --broker-password apply to --broker-url; give the external broker's URL too")}
	}
	if o.Shards, err = shardOptions(v); err != nil {
		return o, err
	}
	o.ShardCredentialsDir = v.GetString("mqtt.shard_credentials_dir")
	if ca := v.GetString("broker.ca"); ca != "" {
		if o.BrokerURL == "" {
			return o, usageError{errors.New("serve: --broker-ca applies to --broker-url; give the external broker's URL too")}
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return o, configError(v.ConfigFileUsed(), "broker.ca", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, configError(v.ConfigFileUsed(), "broker.ca", fmt.Errorf("%s holds no PEM certificate", ca))
		}
		o.BrokerTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	o.Notify, err = notifyOptions(v)
	return o, err
}

// notifyOptions reads the notify.* keys.
func notifyOptions(v *viper.Viper) (dispatch.Options, error) {
	file := v.ConfigFileUsed()
	o := dispatch.Options{DigestHour: v.GetInt("notify.digest_hour"), WebhookTimeout: v.GetDuration("notify.webhook_timeout")}
	if o.DigestHour < 0 || o.DigestHour > 23 {
		return o, configError(file, "notify.digest_hour", fmt.Errorf("%d is not an hour of the day (0-23, UTC)", o.DigestHour))
	}
	if o.WebhookTimeout <= 0 {
		return o, configError(file, "notify.webhook_timeout", fmt.Errorf("%v is not a positive duration", o.WebhookTimeout))
	}
	host := v.GetString("notify.smtp.host")
	if host == "" {
		for _, k := range []string{"notify.smtp.username", "notify.smtp.password_file", "notify.smtp.from", "notify.smtp.ca"} {
			if v.GetString(k) != "" {
				return o, usageError{fmt.Errorf("serve: %s applies to the SMTP server: give notify.smtp.host (--smtp-host) too", k)}
			}
		}
		return o, nil
	}
	e := notify.EmailOptions{Host: host, Port: v.GetInt("notify.smtp.port"), Username: v.GetString("notify.smtp.username"), From: v.GetString("notify.smtp.from")}
	if e.From == "" {
		return o, configError(file, "notify.smtp.from", errors.New("email needs a sender address (--smtp-from)"))
	}
	if pf := v.GetString("notify.smtp.password_file"); pf != "" {
		b, err := os.ReadFile(pf)
		if err != nil {
			return o, configError(file, "notify.smtp.password_file", err)
		}
		e.Password = strings.TrimRight(string(b), "\r\n")
	}
	if ca := v.GetString("notify.smtp.ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return o, configError(file, "notify.smtp.ca", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, configError(file, "notify.smtp.ca", fmt.Errorf("%s holds no PEM certificate", ca))
		}
		e.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if _, err := notify.NewEmail(e); err != nil {
		return o, configError(file, "notify.smtp", err)
	}
	o.Email = &e
	return o, nil
}

// runServe starts the server and blocks until ctx ends, then stops it.
func runServe(ctx context.Context, a *app, opts server.Options) error {
	s, err := server.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintf(a.stdout, "fleetvault server running (installation %s)\n", opts.MBR)
	if s.Broker != nil {
		fmt.Fprintf(a.stdout, "  MQTT broker (embedded): %s\n", s.BrokerURL())
		if addr := s.Broker.TLSAddr(); addr != nil {
			fmt.Fprintf(a.stdout, "  MQTT over TLS:          mqtts://%s\n", addr)
		}
		if addr := s.Broker.WSAddr(); addr != nil {
			fmt.Fprintf(a.stdout, "  MQTT over WebSocket:    ws://%s\n", addr)
		}
	} else {
		fmt.Fprintf(a.stdout, "  MQTT broker (external): %s\n", s.BrokerURL())
	}
	for _, sh := range opts.Shards {
		fmt.Fprintf(a.stdout, "  MQTT broker shard %s: %s\n", sh.Name, sh.URL)
	}
	if u := s.HTTPURL(); u != "" {
		fmt.Fprintf(a.stdout, "  HTTP API:               %s/api/v1 (metrics on /metrics)\n", u)
		fmt.Fprintf(a.stdout, "  Web view (BUI):         %s/ (log on as a user of fleetvault user add)\n", u)
		if cert := s.HTTPCertFile(); cert != "" {
			fmt.Fprintf(a.stdout, "  API certificate:        %s (clients: curl --cacert, fleetvault --cacert)\n", cert)
		}
		if ts, err := s.Tokens().List(); err == nil && len(ts) == 0 {
			fmt.Fprintf(a.stdout, "  no API tokens yet: create one with fleetvault token create --name admin --mbr %s\n", opts.MBR)
		}
	} else {
		fmt.Fprintf(a.stdout, "  HTTP API:               off (enable with --http ADDR)\n")
	}
	a.log.Info("server started", "mbr", opts.MBR, "broker", s.BrokerURL())
	<-ctx.Done()
	a.log.Info("stopping the server; running jobs stay resumable")
	if err := s.Close(); err != nil {
		return fmt.Errorf("serve: stop: %w", err)
	}
	fmt.Fprintln(a.stdout, "fleetvault server stopped")
	return nil
}
