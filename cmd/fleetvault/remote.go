package main

import (
	"crypto/tls"
	"crypto/x509"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
	"os/user"

	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog"
)

// defaultServerURL is where `fleetvault serve --http` listens by default.
const defaultServerURL = "http://127.0.0.1:8686"

// exitCodesHelp is the exit code section of every command that talks to a server.
const exitCodesHelp = `

Exit status: 0 when the command succeeded (for a job: every targeted device
ended restored or backed up), 3 when a job ended but some targeted devices did
not, 1 on an error, 2 on bad usage.`

// addServerFlags adds --server and --token to c and, when persistent, to its
// subcommands.
func addServerFlags(c *cobra.Command, persistent bool) {
	f := c.Flags()
	if persistent {
		f = c.PersistentFlags()
	}
	f.String("server", defaultServerURL, "URL of the Fleetvault server (config: server.url, env FLEETVAULT_SERVER_URL)")
	f.String("token", "", "API token for the server (config: server.token, env FLEETVAULT_SERVER_TOKEN); fleetvault init prints one")
	f.String("cacert", "", "CA certificate file (PEM) to trust for an https:// server, e.g. the api-cert.pem of serve --http-self-signed (config: server.cacert, env FLEETVAULT_SERVER_CACERT)")
}

// remote is where a command finds the server: its URL, its token and a client.
type remote struct {
	url, token string
	client     *apiclient.Client
}

// newRemote resolves --server and --token: a flag given on the command line,
// then FLEETVAULT_SERVER_URL / FLEETVAULT_SERVER_TOKEN, then server.url /
// server.token in the configuration file, then the default.
//
// The keys are resolved here rather than through viper's "server.url": the
// automatic binding of a flag named "server" to the key "server" would shadow
// every "server.*" key.
func newRemote(cmd *cobra.Command, a *app) remote {
	var conf map[string]any
	if a.v != nil {
		if m, ok := a.v.Get("server").(map[string]any); ok {
			conf = m
		}
	}
	pick := func(flag, env, key, def string) string {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			return f.Value.String()
		}
		if v := os.Getenv(env); v != "" {
			return v
		}
		if v, ok := conf[key].(string); ok && v != "" {
			return v
		}
		return def
	}
	r := remote{
		url:   strings.TrimRight(pick("server", "FLEETVAULT_SERVER_URL", "url", defaultServerURL), "/"),
		token: pick("token", "FLEETVAULT_SERVER_TOKEN", "token", ""),
	}
	r.client = apiclient.NewClient(r.url, r.token)
	if ca := pick("cacert", "FLEETVAULT_SERVER_CACERT", "cacert", ""); ca != "" {
		r.client.HTTP = trustingClient(ca)
	}
	return r
}

// trustingClient is an HTTP client that trusts the certificates of the PEM
// file ca (besides the system's roots). A file that cannot be read makes
// every request fail with a sentence naming it.
func trustingClient(ca string) *http.Client {
	pem, err := os.ReadFile(ca)
	pool, perr := x509.SystemCertPool()
	if perr != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if err == nil && !pool.AppendCertsFromPEM(pem) {
		err = fmt.Errorf("%s holds no PEM certificate", ca)
	}
	if err != nil {
		err = fmt.Errorf("--cacert (FLEETVAULT_SERVER_CACERT): %w", err)
		return &http.Client{Transport: failingTransport{err}}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// failingTransport answers every request with its error.
type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

// noServer reports whether err says that nothing answered at the server's
// address (a refused or failed dial), as opposed to an answer or a failure
// after the request was sent.
func noServer(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// explain turns a client error into a sentence saying what to do.
func (r remote) explain(err error) error {
	if err == nil {
		return nil
	}
	switch apiclient.StatusOf(err) {
	case 0:
		return err
	case http.StatusUnauthorized:
		hint := "give a token with --token or FLEETVAULT_SERVER_TOKEN (fleetvault init prints the admin token; fleetvault token create makes more)"
		if r.token != "" {
			hint = "check the token given with --token or FLEETVAULT_SERVER_TOKEN"
		}
		return fmt.Errorf("the server at %s refused the request: %w; %s", r.url, err, hint)
	}
	var ae *apiclient.APIError
	if errors.As(err, &ae) {
		// The server names its routes; a person at the command line wants commands.
		return &apiclient.APIError{Status: ae.Status, Message: apiToCommands.Replace(ae.Message)}
	}
	return err
}

// localError words an error of the service, which names API routes, in
// commands, as explain does for the server's answers.
func localError(err error) error {
	var se *service.Error
	if errors.As(err, &se) {
		return &service.Error{Kind: se.Kind, Msg: apiToCommands.Replace(err.Error())}
	}
	return err
}

var apiToCommands = strings.NewReplacer(
	"GET /api/v1/jobs", "fleetvault jobs list",
	"GET /api/v1/groups", "fleetvault group list",
	"GET /api/v1/devices", "fleetvault device list",
	"GET /api/v1/backups", "fleetvault backups list",
	"GET /api/v1/schedules", "fleetvault schedule list",
	"POST /api/v1/groups/{name}/members", "fleetvault group add",
	"?replace=true", "--replace",
)

// needServer is the error of a command that only a server can carry out.
func (r remote) needServer(what string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op
	}
	return fmt.Errorf("no Fleetvault server answers at %s (%v), and %s runs in the server: start one with fleetvault serve --mbr FILE --http ADDR, or point --server (or FLEETVAULT_SERVER_URL) at a running one", r.url, err, what)
}

// store is what the commands that are safe on the store directly need:
// *apiclient.Client talks to a server, *localStore to the installation itself.
type store interface {
	deviceStore
	groupStore
	backupStore
	profileStore
	certStore
	deviceUpdater
	scheduleStore
}

var (
	_ store = (*apiclient.Client)(nil)
	_ store = (*localStore)(nil)
)

// withStore runs fn against the server; when no server answers it runs fn
// against the installation named by --mbr instead, opened read-only when
// readOnly.
func withStore(a *app, r remote, readOnly bool, fn func(store) error) error {
	return serverOrLocal(a, r, readOnly, func() error { return fn(r.client) }, func(ls *localStore) error { return fn(ls) })
}

// serverOrLocal runs viaServer; when no server answers it opens the
// installation named by --mbr (read-only when readOnly) and runs viaLocal,
// as the installation's administrator. Errors come back worded for a person.
func serverOrLocal(a *app, r remote, readOnly bool, viaServer func() error, viaLocal func(*localStore) error) error {
	err := viaServer()
	if err == nil || !noServer(err) {
		return r.explain(err)
	}
	if a.v.GetString("mbr") == "" {
		return fmt.Errorf("no Fleetvault server answers at %s: start one with fleetvault serve, point --server (or FLEETVAULT_SERVER_URL) at a running one, or give --mbr FILE to work on the installation directly", r.url)
	}
	ls, lerr := openLocalStore(a, readOnly)
	if lerr != nil {
		if isLocked(lerr) {
			return fmt.Errorf("a server is running on this installation but does not answer at %s: use --server with the address it serves its API on (fleetvault serve --http)", r.url)
		}
		return lerr
	}
	defer ls.Close()
	a.log.Debug("no server answers; using the installation directly", "server", r.url, "mbr", a.v.GetString("mbr"))
	return localError(viaLocal(ls))
}

// localStore works on an installation directly, through the same service
// the server's API calls, as the installation's administrator: whoever can
// open its files owns it.
type localStore struct {
	c *catalog.Catalog
	*service.Session
}

// localIdentity is who the CLI's direct mode acts as in the audit log.
func localIdentity() service.Identity {
	name := "local"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = "local:" + u.Username
	}
	return service.Identity{User: name, Role: service.RoleAdmin, Addr: "cli"}
}

// openLocalStore opens the installation named by --mbr, giving up quickly
// when another process (a server) holds it.
func openLocalStore(a *app, readOnly bool) (*localStore, error) {
	p, err := mbrPath(a)
	if err != nil {
		return nil, err
	}
	key, err := installKey(a, p)
	if err != nil {
		return nil, err
	}
	c, err := catalog.Open(p, catalog.Options{Logger: a.log, ReadOnly: readOnly, LockTimeout: lockWait, Key: key})
	if err != nil {
		return nil, err
	}
	tokens := a.v.GetString("http.token_file")
	if tokens == "" {
		tokens = service.TokenFile(p)
	}
	svc := service.New(service.Options{Catalog: c, Tokens: service.OpenTokens(tokens), Logger: a.log})
	return &localStore{c: c, Session: svc.As(localIdentity())}, nil
}

// lockWait is how long a direct-store command waits for a lock a server holds.
const lockWait = 500 * time.Millisecond

func (l *localStore) Close() error { return l.c.Close() }

// isLocked recognises the catalog's error for a file another process holds.
func isLocked(err error) bool { return errors.Is(err, catalog.ErrLocked) }
