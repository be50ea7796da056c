package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetvault/fleetvault/broker"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	creds := fs.String("creds", "", "credentials file (YAML list of name, role, password_hash)")
	tcp := fs.String("tcp", "127.0.0.1:1883", "plain MQTT address (empty for none)")
	tlsAddr := fs.String("tls", "", "MQTT over TLS address, with a self-signed certificate unless -cert/-key")
	cert := fs.String("cert", "", "TLS certificate file (PEM)")
	key := fs.String("key", "", "TLS key file (PEM)")
	ws := fs.String("ws", "", "MQTT over WebSocket address (empty for none)")
	newDevice := fs.String("new-device", "", "print a fresh secret and credentials entry for this device id, and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *newDevice != "" {
		if err := printNewDevice(stdout, *newDevice); err != nil {
			fmt.Fprintln(stderr, "broker:", err)
			return 1
		}
		return 0
	}
	if *creds == "" {
		fmt.Fprintln(stderr, "broker: -creds is required (or -new-device NAME to make an entry)")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c, err := broker.LoadCredentialsFile(*creds)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b, err := broker.New(broker.Options{
		TCPAddr: *tcp, TLSAddr: *tlsAddr, CertFile: *cert, KeyFile: *key, SelfSigned: *cert == "",
		WSAddr: *ws, Credentials: c, Logger: log,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b.OnConnect(func(id string) { log.Info("device online", "device", id) })
	b.OnDisconnect(func(id string) { log.Info("device offline", "device", id) })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go report(ctx, b, log)
	if err := b.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// report logs the counters every minute.
func report(ctx context.Context, b *broker.Broker, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := b.Stats()
			log.Info("broker stats", "connected", s.Connected, "auth_failures", s.AuthFailures,
				"acl_denials", s.ACLDenials, "dropped", s.Dropped)
		}
	}
}

func printNewDevice(w io.Writer, name string) error {
	if !broker.ValidName(name) {
		return fmt.Errorf("device id %q: use 1-%d letters, digits, '-', '.', '_'", name, broker.MaxNameLen)
	}
	secret := broker.NewSecret()
	hash, err := broker.HashPassword(secret)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# secret for %s (give it to the device; it is not stored): %s\n", name, secret)
	fmt.Fprintf(w, "- name: %s\n  role: device\n  password_hash: %q\n", name, hash)
	return nil
}
