package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/mosquittoconf"
	"github.com/fleetvault/fleetvault/server"
)

// newBrokerCommand runs the embedded broker as a process of its own: a broker
// shard (docs/broker.md, "Broker shards").
func newBrokerCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "broker --listen ADDR --credentials FILE",
		Short: "Run the embedded MQTT broker as a broker shard of its own",
		Long: `broker runs Fleetvault's embedded MQTT broker in a process of its own, with
the same device authentication and topic ACL as fleetvault serve's: a broker
shard holding part of a large fleet (one process holds one open file per
connection). Devices whose identifiers carry broker:NAME connect to the shard
NAME; the server connects to every shard as a server identity (mqtt.shards in
fleetvault.yaml).

The shard reads its identities from a credentials file (a YAML list of name,
role, password_hash): the one fleetvault serve keeps up to date for each shard
in mqtt.shard_credentials_dir (NAME.credentials.yaml), or one written by
fleetvault broker credentials. It never opens the resource database, so it
never holds its lock. It re-reads the file when it changes (checked every
--reload) and on SIGHUP; a file that does not load leaves the identities as
they were. A device added to the resource database can connect within the
server's export interval (10 s) plus --reload.

It prints "listening mqtt://ADDR" once it accepts connections and
"credentials N" after each reload, one line each, on standard output.`,
		Example: `  fleetvault broker --listen 0.0.0.0:1884 --credentials /var/lib/fleetvault/shards/shard1.credentials.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBroker(cmd.Context(), a)
		},
	}
	f := c.Flags()
	f.String("listen", "127.0.0.1:1884", "MQTT over TCP address")
	f.String("credentials", "", "credentials file (YAML list of name, role, password_hash)")
	f.Duration("reload", 2*time.Second, "how often to check the credentials file for changes")
	f.Int("max-clients", 0, "connections at once (0: no limit beyond the open-file limit)")
	c.AddCommand(newBrokerCredentialsCommand(a), newBrokerMosquittoCommand(a))
	return c
}

func runBroker(ctx context.Context, a *app) error {
	path := a.v.GetString("credentials")
	if path == "" {
		return usageError{errors.New("broker: give --credentials FILE (fleetvault broker credentials writes one)")}
	}
	if a.v.GetDuration("reload") <= 0 {
		return usageError{errors.New("broker: --reload must be positive")}
	}
	creds, err := broker.OpenCredentialsFile(path)
	if err != nil {
		return err
	}
	b, err := broker.New(broker.Options{TCPAddr: a.v.GetString("listen"), Credentials: creds, MaxClients: a.v.GetInt("max-clients"), Logger: a.log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.Start(ctx); err != nil {
		return fmt.Errorf("broker: listen on %s: %w", a.v.GetString("listen"), err)
	}
	defer b.Close()
	n, _, _ := creds.Refresh()
	fmt.Fprintf(a.stdout, "listening mqtt://%s\n", b.Addr())
	fmt.Fprintf(a.stdout, "credentials %d\n", n)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(a.v.GetDuration("reload"))
	defer tick.Stop()
	for {
		var n int
		var loaded bool
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			n, err = creds.Reload()
			loaded = err == nil
		case <-tick.C:
			n, loaded, err = creds.Refresh()
		}
		if err != nil {
			a.log.Error("broker: credentials not reloaded; the previous ones stay in force", "file", path, "err", err)
			continue
		}
		if loaded {
			a.log.Info("broker: credentials reloaded", "file", path, "identities", n)
			fmt.Fprintf(a.stdout, "credentials %d\n", n)
		}
	}
}

func newBrokerCredentialsCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "credentials --shard NAME... --dir DIR",
		Short: "Write the credentials file of broker shards from the resource database",
		Long: `credentials writes DIR/NAME.credentials.yaml for each --shard: the devices whose
identifiers name the shard (broker:NAME) and every server identity, with the
password hashes of the resource database. It opens the installation
read-only, so it waits for a running fleetvault serve's lock: with a server
running, let it keep the files itself (mqtt.shard_credentials_dir).`,
		Example: `  fleetvault broker credentials --mbr /var/lib/fleetvault/fleetvault.mbr --shard shard1 --shard shard2 --dir /var/lib/fleetvault/shards`,
		Args:    cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			shards, dir := a.v.GetStringSlice("shard"), a.v.GetString("dir")
			if len(shards) == 0 || dir == "" {
				return usageError{errors.New("broker credentials: give --shard NAME (one or more) and --dir DIR")}
			}
			c, err := openCatalog(a, true)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if _, err := server.ExportShardCredentials(c, dir, shards); err != nil {
				return err
			}
			for _, s := range shards {
				fmt.Fprintln(a.stdout, server.ShardCredentialsFile(dir, s))
			}
			return nil
		},
	}
	c.Flags().StringSlice("shard", nil, "broker shard name (repeat or separate with commas)")
	c.Flags().String("dir", "", "directory for the credentials files")
	return c
}

func newBrokerMosquittoCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "mosquitto-config --dir DIR --listen ADDR --secrets FILE [--server NAME]",
		Short: "Write a Mosquitto broker shard's configuration, password file and ACL",
		Long: `mosquitto-config writes DIR/mosquitto.conf, DIR/fleetvault.passwd (Mosquitto's
PBKDF2-SHA512 format) and DIR/fleetvault.acl for a Mosquitto 2 broker shard
listening on --listen. --secrets is a file of name:password lines (the
shard's devices and its server identities, as given at provisioning:
Mosquitto cannot check the resource database's argon2id hashes); each
--server name gets the server's ACL block. Run Mosquitto with
mosquitto -c DIR/mosquitto.conf; it re-reads the files on SIGHUP.`,
		Example: `  fleetvault broker mosquitto-config --dir /etc/mosquitto/shard2 --listen 0.0.0.0:1885 --secrets shard2.secrets --server fleetvault`,
		Args:    cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			dir, listen, secrets := a.v.GetString("dir"), a.v.GetString("listen"), a.v.GetString("secrets")
			if dir == "" || listen == "" || secrets == "" {
				return usageError{errors.New("broker mosquitto-config: give --dir, --listen and --secrets")}
			}
			ids, err := readSecrets(secrets, a.v.GetStringSlice("server"))
			if err != nil {
				return err
			}
			cfg := mosquittoconf.Config{Listen: listen, Identities: ids}
			if os.Geteuid() == 0 {
				cfg.User = "root" // the files are root's: Mosquitto must not drop to its own user
			}
			if err := mosquittoconf.Write(dir, cfg); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %s/{%s,%s,%s} (%d identities)\n", dir, mosquittoconf.ConfFile, mosquittoconf.PasswordFile, mosquittoconf.ACLFile, len(ids))
			return nil
		},
	}
	f := c.Flags()
	f.String("dir", "", "directory to write into")
	f.String("listen", "", "the shard's MQTT address, host:port")
	f.String("secrets", "", "file of name:password lines")
	f.StringSlice("server", []string{"fleetvault"}, "server identities among the names (ACL: all request topics to write, all response topics to read)")
	return c
}

// readSecrets reads name:password lines; servers name the server identities.
func readSecrets(path string, servers []string) ([]mosquittoconf.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	defer f.Close()
	isServer := map[string]bool{}
	for _, s := range servers {
		isServer[s] = true
	}
	var ids []mosquittoconf.Identity
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, pw, ok := strings.Cut(text, ":")
		if !ok || name == "" || pw == "" {
			return nil, fmt.Errorf("secrets file %s: line %d: expected name:password", path, line)
		}
		ids = append(ids, mosquittoconf.Identity{Name: name, Password: pw, Server: isServer[name]})
		delete(isServer, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	for s := range isServer {
		return nil, fmt.Errorf("secrets file %s: server identity %s has no line", path, s)
	}
	return ids, nil
}
