package catalog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// MBRVersion is the version of the master backup record format this package
// reads and writes.
const MBRVersion = 1

// MBRFile is the name Init gives the master backup record.
const MBRFile = "fleetvault.mbr"

// MBR is the master backup record: the root of an installation. Paths are as
// written in the file, relative to the MBR's directory unless absolute; use
// Path to resolve one. See docs/spec/mbr.md.
type MBR struct {
	Version   int               `yaml:"version"`
	Server    string            `yaml:"server"`              // this site's backup server address
	DRServer  string            `yaml:"dr_server,omitempty"` // the DR site's backup server address
	Resources string            `yaml:"resources"`           // the resource database
	Catalog   string            `yaml:"catalog"`             // the default catalog
	Catalogs  map[string]string `yaml:"catalogs,omitempty"`  // other catalogs, by name
	Journal   string            `yaml:"journal"`             // the job journal (group-restore engine)
	Methods   string            `yaml:"methods"`             // the method (media agent) repository
	// Keys is the directory of key files (package repokey) of an encrypted
	// installation; empty for an installation in clear.
	Keys string `yaml:"keys,omitempty"`

	dir string // the MBR's directory, for resolving relative paths
}

// Path resolves p, a path from the MBR, against the MBR's directory.
func (m MBR) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(m.dir, p)
}

// Dir is the directory the MBR was read from.
func (m MBR) Dir() string { return m.dir }

// CatalogNames lists the catalogs: "" for the default, then the others sorted.
func (m MBR) CatalogNames() []string {
	names := []string{""}
	for n := range m.Catalogs {
		names = append(names, n)
	}
	sort.Strings(names[1:])
	return names
}

// ReadMBR reads and validates the master backup record at path.
func ReadMBR(path string) (MBR, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return MBR{}, fmt.Errorf("catalog: read master backup record: %w", err)
	}
	m, err := ParseMBR(data)
	if err != nil {
		return MBR{}, fmt.Errorf("catalog: master backup record %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return MBR{}, fmt.Errorf("catalog: master backup record %s: %w", path, err)
	}
	m.dir = filepath.Dir(abs)
	return m, nil
}

// ParseMBR decodes and validates a master backup record. Unknown keys are an
// error, so a typo does not silently point at the wrong file.
func ParseMBR(data []byte) (MBR, error) {
	var m MBR
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return MBR{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return m, m.validate()
}

func (m MBR) validate() error {
	if m.Version != MBRVersion {
		return fmt.Errorf("%w: version %d, this fleetvault reads version %d", ErrInvalid, m.Version, MBRVersion)
	}
	for _, f := range []struct{ key, val string }{
		{"resources", m.Resources}, {"catalog", m.Catalog}, {"journal", m.Journal}, {"methods", m.Methods},
	} {
		if strings.TrimSpace(f.val) == "" {
			return fmt.Errorf("%w: %s is missing", ErrInvalid, f.key)
		}
	}
	for name, p := range m.Catalogs {
		if name == "" || strings.ContainsAny(name, "/\x00") {
			return fmt.Errorf("%w: catalogs: bad catalog name %q", ErrInvalid, name)
		}
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("%w: catalogs: %s has no path", ErrInvalid, name)
		}
	}
	return nil
}

// Marshal encodes the MBR as the documented YAML, with a header comment.
func (m MBR) Marshal() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	body, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("catalog: encode master backup record: %w", err)
	}
	head := "# Fleetvault master backup record (docs/spec/mbr.md).\n" +
		"# Relative paths are relative to this file's directory.\n"
	return append([]byte(head), body...), nil
}

// WriteMBR writes m to path atomically (temporary file, fsync, rename).
func WriteMBR(path string, m MBR) error {
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mbr-*")
	if err != nil {
		return fmt.Errorf("catalog: write master backup record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("catalog: write master backup record: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("catalog: write master backup record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("catalog: write master backup record: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("catalog: write master backup record: %w", err)
	}
	return nil
}

// InitOptions configure a new installation.
type InitOptions struct {
	Server   string // this site's backup server address
	DRServer string // the DR site's backup server address, if any
	// Catalogs are other catalogs besides the default, name -> path
	// (relative to dir), e.g. one per catalog server.
	Catalogs map[string]string
	// Key, when set, encrypts the installation: its content and resource
	// records are sealed with it. KeyDir is where its key files are (Key's
	// caller created them with repokey.Create); it is recorded in the MBR,
	// relative to dir when inside it.
	Key    *repokey.Key
	KeyDir string
}

// Init creates a fresh installation in dir (created if missing): an empty
// resource database, default catalog, method repository and the master backup
// record, whose path it returns. It refuses a dir that already has an MBR.
func Init(dir string, opts InitOptions) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("catalog: init %s: %w", dir, err)
	}
	mbrPath := filepath.Join(dir, MBRFile)
	if _, err := os.Stat(mbrPath); err == nil {
		return "", fmt.Errorf("catalog: init %s: %s %w", dir, mbrPath, ErrExists)
	}
	m := MBR{
		Version: MBRVersion, Server: opts.Server, DRServer: opts.DRServer,
		Resources: "resources.db", Catalog: "catalog.db", Journal: "jobs.db", Methods: "methods",
		Catalogs: opts.Catalogs, dir: dir,
	}
	if opts.Key != nil {
		if opts.KeyDir == "" {
			return "", fmt.Errorf("catalog: init %s: %w: a key with no key directory", dir, ErrInvalid)
		}
		m.Keys = opts.KeyDir
		if rel, err := filepath.Rel(dir, opts.KeyDir); err == nil && !strings.HasPrefix(rel, "..") {
			m.Keys = rel
		}
	}
	if err := m.validate(); err != nil {
		return "", fmt.Errorf("catalog: init %s: %w", dir, err)
	}
	if err := os.MkdirAll(m.Path(m.Methods), 0o755); err != nil {
		return "", fmt.Errorf("catalog: init %s: %w", dir, err)
	}
	if err := createStores(m, opts.Key); err != nil {
		return "", fmt.Errorf("catalog: init %s: %w", dir, err)
	}
	if err := WriteMBR(mbrPath, m); err != nil {
		return "", err
	}
	return mbrPath, nil
}
