package mosquittoconf

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetvault/fleetvault/broker"
)

// Files Write creates in its directory.
const (
	ConfFile     = "mosquitto.conf"
	PasswordFile = "fleetvault.passwd"
	ACLFile      = "fleetvault.acl"
)

// Identity is a user of the shard: a device (its id and secret) or, with
// Server, a server identity.
type Identity struct {
	Name     string
	Password string
	Server   bool
}

// Config is one shard's broker.
type Config struct {
	Listen     string // host:port of the plain MQTT listener
	Identities []Identity
	// MaxQueued and MaxInflight are Mosquitto's per-client queue limits
	// (defaults 1000 and 100): every answer goes to the server's client.
	MaxQueued, MaxInflight int
	// User is the system user Mosquitto runs as when started by root (its
	// "user" option); "" keeps Mosquitto's default (it drops to mosquitto).
	User string
}

// hashIterations is mosquitto_passwd's default for $7$ hashes.
const hashIterations = 101

// HashPassword returns pw in Mosquitto 2's password-file format:
// $7$ITERATIONS$SALT$HASH, PBKDF2-HMAC-SHA512 with a 12-byte salt and a
// 64-byte key, both in standard base64.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("mosquittoconf: salt: %w", err)
	}
	key, err := pbkdf2.Key(sha512.New, pw, salt, hashIterations, sha512.Size)
	if err != nil {
		return "", fmt.Errorf("mosquittoconf: hash: %w", err)
	}
	enc := base64.StdEncoding
	return "$7$" + strconv.Itoa(hashIterations) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key), nil
}

// Write creates dir (if needed) and writes mosquitto.conf, fleetvault.passwd
// and fleetvault.acl into it, readable by the owner only.
func Write(dir string, c Config) error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("mosquittoconf: listen address %q: %w", c.Listen, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("mosquittoconf: listen address %q: a port from 1 to 65535", c.Listen)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mosquittoconf: %w", err)
	}
	pw, acl, err := users(c.Identities)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("mosquittoconf: %w", err)
	}
	files := map[string][]byte{PasswordFile: pw, ACLFile: acl, ConfFile: conf(abs, host, port, c)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("mosquittoconf: %w", err)
		}
	}
	return nil
}

// users returns the password file and the ACL.
func users(ids []Identity) (passwd, acl []byte, err error) {
	sorted := append([]Identity(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var pw, a bytes.Buffer
	a.WriteString("# Devices: their own request topic to read, their own response topic to write.\n" +
		"pattern read fleetvault/v1/%u/req\npattern write fleetvault/v1/%u/res\n")
	seen := map[string]bool{}
	for _, id := range sorted {
		switch {
		case !broker.ValidName(id.Name) || strings.ContainsAny(id.Name, ":+#/"):
			return nil, nil, fmt.Errorf("mosquittoconf: identity %q: not a valid name", id.Name)
		case seen[id.Name]:
			return nil, nil, fmt.Errorf("mosquittoconf: identity %q appears twice", id.Name)
		case id.Password == "":
			return nil, nil, fmt.Errorf("mosquittoconf: identity %s has no password", id.Name)
		}
		seen[id.Name] = true
		h, err := HashPassword(id.Password)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(&pw, "%s:%s\n", id.Name, h)
		if id.Server {
			fmt.Fprintf(&a, "\n# Server identity %[1]s.\nuser %[1]s\ntopic write fleetvault/v1/+/req\ntopic read fleetvault/v1/+/res\n", id.Name)
		}
	}
	if len(seen) == 0 {
		return nil, nil, errors.New("mosquittoconf: no identities")
	}
	return pw.Bytes(), a.Bytes(), nil
}

func conf(dir, host, port string, c Config) []byte {
	queued, inflight := c.MaxQueued, c.MaxInflight
	if queued <= 0 {
		queued = 1000
	}
	if inflight <= 0 {
		inflight = 100
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# A Fleetvault broker shard, written by fleetvault broker mosquitto-config.\n")
	fmt.Fprintf(&b, "per_listener_settings false\nlistener %s %s\nallow_anonymous false\n", port, host)
	fmt.Fprintf(&b, "password_file %s\nacl_file %s\n", filepath.Join(dir, PasswordFile), filepath.Join(dir, ACLFile))
	fmt.Fprintf(&b, "use_username_as_clientid true\nretain_available false\nmax_queued_messages %d\nmax_inflight_messages %d\n", queued, inflight)
	if c.User != "" {
		fmt.Fprintf(&b, "user %s\n", c.User)
	}
	b.WriteString("persistence false\nmax_packet_size 2097152\nlog_dest stderr\nlog_type error\nlog_type warning\nconnection_messages false\n")
	return b.Bytes()
}
