package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// Role says what an identity may do on the broker.
type Role int

// Roles. The zero Role is invalid, so a forgotten field is refused, not
// silently treated as a device.
const (
	RoleDevice Role = iota + 1 // its own request topic (read) and response topic (write)
	RoleServer                 // every device's request topic (write) and response topic (read)
)

// String returns "device" or "server".
func (r Role) String() string {
	switch r {
	case RoleDevice:
		return "device"
	case RoleServer:
		return "server"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole parses "device" or "server".
func ParseRole(s string) (Role, error) {
	switch s {
	case "device":
		return RoleDevice, nil
	case "server":
		return RoleServer, nil
	}
	return 0, fmt.Errorf("role %q is not device or server", truncate(s))
}

// Identity is who may connect: a device or the server.
type Identity struct {
	Name         string // the MQTT username; for a device also its client id and device id
	Role         Role
	PasswordHash string // argon2id PHC string, from HashPassword
}

// Credentials looks identities up by username. The resource database
// implements it; StaticCredentials and LoadCredentialsFile serve tests and
// small setups.
type Credentials interface {
	// Lookup returns the identity named username. found is false, with a nil
	// error, when there is none; the error is for a failure of the store
	// itself. Lookup is called concurrently, once per connection attempt (the
	// broker's verified-credentials cache saves the password hashing, not the
	// lookup, so that a changed hash takes effect at once): it must be cheap,
	// an indexed read.
	Lookup(username string) (id Identity, found bool, err error)
}

// StaticCredentials is a fixed set of identities keyed by name.
type StaticCredentials map[string]Identity

var _ Credentials = StaticCredentials(nil)

// Lookup returns the identity named username.
func (s StaticCredentials) Lookup(username string) (Identity, bool, error) {
	id, ok := s[username]
	return id, ok, nil
}

// MaxNameLen is the longest device or server name accepted.
const MaxNameLen = 128

// ValidName reports whether s is a valid device or server name: 1 to
// MaxNameLen letters, digits, '-', '.' and '_'. Such a name is safe to put in
// a topic (no '/', '+', '#').
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

// credentialEntry is one entry of a credentials file.
type credentialEntry struct {
	Name         string `yaml:"name"`
	Role         string `yaml:"role"`
	PasswordHash string `yaml:"password_hash"`
}

// LoadCredentialsFile reads a YAML credentials file: a list of entries
// {name, role, password_hash}. Errors name the file and the entry.
func LoadCredentialsFile(path string) (StaticCredentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("broker: credentials file: %w", err)
	}
	return ParseCredentials(data, path)
}

// maxCredentialsBytes bounds a credentials file: 64 MiB is several hundred
// thousand identities.
const maxCredentialsBytes = 64 << 20

// ParseCredentials parses the contents of a credentials file; source names it
// in errors.
func ParseCredentials(data []byte, source string) (StaticCredentials, error) {
	fail := func(format string, a ...any) (StaticCredentials, error) {
		return nil, fmt.Errorf("broker: credentials file %s: %s", source, fmt.Sprintf(format, a...))
	}
	if len(data) > maxCredentialsBytes {
		return fail("%d bytes exceeds the limit of %d", len(data), maxCredentialsBytes)
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return StaticCredentials{}, nil
		}
		return fail("not valid YAML: %v", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return StaticCredentials{}, nil
	}
	if root.Kind != yaml.SequenceNode {
		return fail("line %d: want a list of {name, role, password_hash} entries", root.Line)
	}
	creds := make(StaticCredentials, len(root.Content))
	for i, n := range root.Content {
		id, err := parseEntry(n)
		if err != nil {
			return fail("entry %d (line %d): %v", i+1, n.Line, err)
		}
		if _, dup := creds[id.Name]; dup {
			return fail("entry %d (line %d): name %q appears twice", i+1, n.Line, id.Name)
		}
		creds[id.Name] = id
	}
	return creds, nil
}

// parseEntry checks one entry of a credentials file.
func parseEntry(n *yaml.Node) (Identity, error) {
	if n.Kind != yaml.MappingNode {
		return Identity{}, errors.New("not a mapping with name, role and password_hash")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "name", "role", "password_hash":
		default:
			return Identity{}, fmt.Errorf("unknown key %q (want name, role, password_hash)", truncate(k))
		}
	}
	var e credentialEntry
	if err := n.Decode(&e); err != nil {
		return Identity{}, err
	}
	if !ValidName(e.Name) {
		return Identity{}, fmt.Errorf("name %q is not 1-%d letters, digits, '-', '.' or '_'", truncate(e.Name), MaxNameLen)
	}
	role, err := ParseRole(e.Role)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", e.Name, err)
	}
	if _, _, _, err := ParseHash(e.PasswordHash); err != nil {
		return Identity{}, fmt.Errorf("%s: password_hash: %w", e.Name, err)
	}
	return Identity{Name: e.Name, Role: role, PasswordHash: e.PasswordHash}, nil
}
