package repokey

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Params are argon2id's cost parameters, stored in each key file.
type Params struct {
	Time      uint32 `json:"time"`       // passes
	MemoryKiB uint32 `json:"memory_kib"` // memory in KiB
	Threads   uint8  `json:"threads"`
}

// DefaultParams are the parameters new key files get: RFC 9106's second
// recommended option (64 MiB, 3 passes), 4 lanes.
func DefaultParams() Params { return Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4} }

// Bounds on stored parameters: a damaged or hostile key file must not make
// Open spend minutes or gigabytes.
const (
	maxTime      = 16
	maxMemoryKiB = 1 << 20 // 1 GiB: a hostile key file or export header must not exhaust memory
	minMemoryKiB = 8
	saltLen      = 16
	fileVersion  = 1
	keyFileExt   = ".key"
)

func (p Params) validate() error {
	if p.Time < 1 || p.Time > maxTime || p.MemoryKiB < minMemoryKiB || p.MemoryKiB > maxMemoryKiB || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters time=%d memory=%dKiB threads=%d out of range (time 1-%d, memory %d-%d KiB, threads >= 1)",
			p.Time, p.MemoryKiB, p.Threads, maxTime, minMemoryKiB, maxMemoryKiB)
	}
	return nil
}

// fileJSON is a key file (docs/spec/mbr.md, "Key files").
type fileJSON struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname,omitempty"`
	Username string    `json:"username,omitempty"`
	KDF      string    `json:"kdf"`
	Params   Params    `json:"params"`
	Salt     []byte    `json:"salt"`
	KeyID    string    `json:"key_id"` // Key.ID of the wrapped key: which repository key
	Data     []byte    `json:"data"`   // the repository key sealed under the derived key
}

// Info describes a key file, for listing; it holds no secret.
type Info struct {
	ID       string    // the file's name without .key
	Created  time.Time // when it was added
	Hostname string    // where it was added
	Username string    // by whom
	KeyID    string    // the repository key it wraps
	Params   Params
}

// Errors, checked with errors.Is.
var (
	// ErrWrongPassphrase: no key file opens with the passphrase.
	ErrWrongPassphrase = errors.New("wrong passphrase: no key file opens with it")
	// ErrNoKeys: the keys directory holds no key file.
	ErrNoKeys = errors.New("no key files")
	// ErrLastKey: removing the only key file would lose the data.
	ErrLastKey = errors.New("it is the last key file: removing it would make the data unreadable")
	// ErrNoSuchKey: no key file has the given id.
	ErrNoSuchKey = errors.New("no such key file")
)

var wrapAD = []byte("fleetvault key file v1")

// Create makes dir (mode 0700) with a key file wrapping a new repository
// key under pass. dir must not hold key files already.
func Create(dir string, pass []byte, p Params) (*Key, Info, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, Info{}, fmt.Errorf("repokey: create %s: %w", dir, err)
	}
	if infos, err := List(dir); err == nil && len(infos) > 0 {
		return nil, Info{}, fmt.Errorf("repokey: create %s: it already holds %d key file(s)", dir, len(infos))
	}
	raw := make([]byte, Size)
	_, _ = rand.Read(raw)
	k, err := FromBytes(raw)
	if err != nil {
		return nil, Info{}, err
	}
	info, err := add(dir, raw, k.ID(), pass, p)
	return k, info, err
}

// Add writes a new key file in dir wrapping k under pass.
func Add(dir string, k *Key, pass []byte, p Params) (Info, error) {
	return add(dir, k.raw, k.ID(), pass, p)
}

func add(dir string, raw []byte, keyID string, pass []byte, p Params) (Info, error) {
	if len(pass) == 0 {
		return Info{}, errors.New("repokey: an empty passphrase is not allowed")
	}
	if err := p.validate(); err != nil {
		return Info{}, fmt.Errorf("repokey: %w", err)
	}
	f := fileJSON{Version: fileVersion, Created: time.Now().UTC().Truncate(time.Second), KDF: "argon2id", Params: p,
		Salt: make([]byte, saltLen), KeyID: keyID}
	f.Hostname, _ = os.Hostname()
	f.Username = os.Getenv("USER")
	_, _ = rand.Read(f.Salt)
	w, err := chacha20poly1305.NewX(argon2.IDKey(pass, f.Salt, p.Time, p.MemoryKiB, p.Threads, Size))
	if err != nil {
		return Info{}, fmt.Errorf("repokey: %w", err)
	}
	f.Data = seal(w, nil, raw, wrapAD)
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return Info{}, fmt.Errorf("repokey: encode key file: %w", err)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	name := hex.EncodeToString(id)
	if err := writeFile(filepath.Join(dir, name+keyFileExt), data); err != nil {
		return Info{}, fmt.Errorf("repokey: add key file: %w", err)
	}
	return f.info(name), nil
}

func (f fileJSON) info(id string) Info {
	return Info{ID: id, Created: f.Created, Hostname: f.Hostname, Username: f.Username, KeyID: f.KeyID, Params: f.Params}
}

// writeFile writes data to path atomically with mode 0600.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}

func readFile(dir, id string) (fileJSON, error) {
	var f fileJSON
	data, err := os.ReadFile(filepath.Join(dir, id+keyFileExt))
	if errors.Is(err, fs.ErrNotExist) {
		return f, fmt.Errorf("repokey: key %s: %w", id, ErrNoSuchKey)
	}
	if err != nil {
		return f, fmt.Errorf("repokey: key %s: %w", id, err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("repokey: key file %s: does not decode: %v", filepath.Join(dir, id+keyFileExt), err)
	}
	if f.Version != fileVersion || f.KDF != "argon2id" || len(f.Salt) < 8 {
		return f, fmt.Errorf("repokey: key file %s: version %d, kdf %q: not a key file this fleetvault reads",
			filepath.Join(dir, id+keyFileExt), f.Version, f.KDF)
	}
	if err := f.Params.validate(); err != nil {
		return f, fmt.Errorf("repokey: key file %s: %w", filepath.Join(dir, id+keyFileExt), err)
	}
	return f, nil
}

// List describes every key file in dir, oldest first.
func List(dir string) ([]Info, error) {
	ids, err := ids(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ids))
	for _, id := range ids {
		f, err := readFile(dir, id)
		if err != nil {
			return nil, err
		}
		out = append(out, f.info(id))
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Created.Before(out[b].Created) })
	return out, nil
}

func ids(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("repokey: keys directory: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && strings.HasSuffix(n, keyFileExt) && !strings.HasPrefix(n, ".") {
			ids = append(ids, strings.TrimSuffix(n, keyFileExt))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Open finds the key file in dir that pass opens and returns the
// repository key and the file's Info. A passphrase
// no file opens is ErrWrongPassphrase. Files that do not decode are skipped
// when another opens; if none opens, their errors are joined in.
func Open(dir string, pass []byte) (*Key, Info, error) {
	ids, err := ids(dir)
	if err != nil {
		return nil, Info{}, err
	}
	if len(ids) == 0 {
		return nil, Info{}, fmt.Errorf("repokey: %s: %w", dir, ErrNoKeys)
	}
	var bad []error
	for _, id := range ids {
		f, err := readFile(dir, id)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		w, err := chacha20poly1305.NewX(argon2.IDKey(pass, f.Salt, f.Params.Time, f.Params.MemoryKiB, f.Params.Threads, Size))
		if err != nil {
			return nil, Info{}, fmt.Errorf("repokey: %w", err)
		}
		raw, err := open(w, nil, f.Data, wrapAD)
		if err != nil {
			continue
		}
		k, err := FromBytes(raw)
		if err != nil {
			bad = append(bad, fmt.Errorf("repokey: key file %s: %w", id, err))
			continue
		}
		if k.ID() != f.KeyID {
			bad = append(bad, fmt.Errorf("repokey: key file %s: wraps key %s but says %s", id, k.ID(), f.KeyID))
			continue
		}
		return k, f.info(id), nil
	}
	return nil, Info{}, errors.Join(append([]error{fmt.Errorf("repokey: %s: %w", dir, ErrWrongPassphrase)}, bad...)...)
}

// Remove deletes key file id. It refuses to remove the last key file that
// wraps the same repository key.
func Remove(dir, id string) error {
	f, err := readFile(dir, id)
	if err != nil {
		return err
	}
	infos, err := List(dir)
	if err != nil {
		return err
	}
	same := 0
	for _, in := range infos {
		if in.KeyID == f.KeyID {
			same++
		}
	}
	if same <= 1 {
		return fmt.Errorf("repokey: remove key %s: %w", id, ErrLastKey)
	}
	if err := os.Remove(filepath.Join(dir, id+keyFileExt)); err != nil {
		return fmt.Errorf("repokey: remove key %s: %w", id, err)
	}
	return nil
}

// RemoveKey deletes every key file that wraps the repository key keyID
// (after a rotation, the old key's files). It refuses when no key file of
// another key would remain.
func RemoveKey(dir, keyID string) (int, error) {
	infos, err := List(dir)
	if err != nil {
		return 0, err
	}
	var doomed []string
	for _, in := range infos {
		if in.KeyID == keyID {
			doomed = append(doomed, in.ID)
		}
	}
	if len(doomed) == len(infos) {
		return 0, fmt.Errorf("repokey: remove the files of key %s: %w", keyID, ErrLastKey)
	}
	for _, id := range doomed {
		if err := os.Remove(filepath.Join(dir, id+keyFileExt)); err != nil {
			return 0, fmt.Errorf("repokey: remove key %s: %w", id, err)
		}
	}
	return len(doomed), nil
}
