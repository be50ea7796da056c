package httpguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fleetvault/fleetvault/tlscert"
)

// Defaults of Options.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// Options configure Listen. Zero durations and sizes take the defaults.
type Options struct {
	Addr string // host:port to listen on

	// TLS: CertFile and KeyFile, or SelfSignedDir (a self-signed pair kept
	// there, made on first use: see tlscert.Persistent). Neither: plain HTTP.
	CertFile      string
	KeyFile       string
	SelfSignedDir string

	ReadHeaderTimeout time.Duration // until the request's headers are read
	ReadTimeout       time.Duration // until the whole request, body included, is read
	WriteTimeout      time.Duration // until the answer is written
	IdleTimeout       time.Duration // between requests on a kept-alive connection
	MaxHeaderBytes    int

	// BaseContext is every request's parent context (see http.Server).
	BaseContext func(net.Listener) context.Context
	Logger      *slog.Logger
}

// Server is a listening, hardened HTTP server.
type Server struct {
	http     *http.Server
	ln       net.Listener
	tls      bool
	certFile string
}

// Listen listens on o.Addr and prepares to serve h there. It warns on the
// logger when the address is not a loopback one and there is no TLS.
func Listen(o Options, h http.Handler) (*Server, error) {
	o = o.withDefaults()
	s := &Server{http: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		BaseContext:       o.BaseContext,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}}
	cfg, certFile, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("httpguard: listen on %s: %w", o.Addr, err)
	}
	if cfg != nil {
		s.http.TLSConfig = cfg
		s.tls, s.certFile = true, certFile
		ln = tls.NewListener(ln, cfg)
	} else if !IsLoopback(ln.Addr()) {
		o.Logger.Warn("the HTTP server listens on a network address without TLS: tokens, passwords and settings cross the network in clear; give a certificate (--http-cert and --http-key) or use --http-self-signed",
			"addr", ln.Addr().String())
	}
	s.ln = ln
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// tlsConfig returns nil for plain HTTP, and the certificate file clients
// should trust when it is a self-signed one.
func (o Options) tlsConfig() (*tls.Config, string, error) {
	var cert tls.Certificate
	var certFile string
	var err error
	switch {
	case o.CertFile != "" || o.KeyFile != "":
		if o.SelfSignedDir != "" {
			return nil, "", errors.New("httpguard: give a certificate and key, or ask for a self-signed one, not both")
		}
		cert, err = tlscert.Load(o.CertFile, o.KeyFile)
		certFile = o.CertFile
	case o.SelfSignedDir != "":
		host, _, _ := net.SplitHostPort(o.Addr)
		hosts := []string{host}
		if name, herr := os.Hostname(); herr == nil {
			hosts = append(hosts, name)
		}
		cert, certFile, err = tlscert.Persistent(o.SelfSignedDir, "fleetvault", hosts, time.Now())
	default:
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("httpguard: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certFile, nil
}

// Serve serves until Shutdown or Close; it returns http.ErrServerClosed then.
func (s *Server) Serve() error { return s.http.Serve(s.ln) }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// TLS reports whether the server speaks TLS.
func (s *Server) TLS() bool { return s.tls }

// CertFile is the certificate file clients should trust (curl --cacert), or
// "" for plain HTTP.
func (s *Server) CertFile() string { return s.certFile }

// URL is the base URL of the server, e.g. https://127.0.0.1:8686.
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		return s.http.Close()
	}
	return nil
}

// IsLoopback reports whether a listening or peer address is a loopback one
// (127.0.0.0/8, ::1). An unspecified address (0.0.0.0, ::) is not.
func IsLoopback(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// FromLoopback reports whether the request came from a loopback address.
func FromLoopback(r *http.Request) bool {
	ip := net.ParseIP(ClientAddr(r))
	return ip != nil && ip.IsLoopback()
}

// ClientAddr is the request's peer address without its port.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
