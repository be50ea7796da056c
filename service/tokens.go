package service

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// TokenFileName is the API token file's name, kept beside the MBR.
const TokenFileName = "api-tokens.yaml"

// tokenPrefix marks Fleetvault API tokens, so a leaked one is recognisable
// (secret scanners) and a device secret is not mistaken for one.
const tokenPrefix = "fvt_"

// Token errors, checked with errors.Is.
var (
	ErrBadToken     = errors.New("invalid or revoked API token")
	ErrTokenExists  = errors.New("an API token with this name already exists")
	ErrTokenUnknown = errors.New("no API token with this name")
	ErrBadTokenName = errors.New("bad API token name")
)

// TokenInfo describes one API token. The token itself is never stored: only
// its SHA-256, which is enough for a 256-bit random secret.
type TokenInfo struct {
	Name    string    `yaml:"name" json:"name"`
	User    string    `yaml:"user,omitempty" json:"user,omitempty"` // the user it acts as; "" an installation admin token (init's)
	Hash    string    `yaml:"sha256" json:"-"`
	Created time.Time `yaml:"created" json:"created"`
}

type tokenFile struct {
	Version int         `yaml:"version"`
	Tokens  []TokenInfo `yaml:"tokens"`
}

// Tokens is the API token file of an installation (api-tokens.yaml beside the
// MBR, mode 0600). The server re-reads it when it changes, so a token created
// or revoked with `fleetvault token` while the server runs takes effect on
// the next request. Writes replace the file atomically.
type Tokens struct {
	path string

	mu     sync.Mutex
	stamp  fileStamp
	byHash map[string]TokenInfo // sha256 hex -> token
}

// fileStamp identifies a version of the file: writes replace it by rename,
// so a new version is a new file even within one mtime tick.
type fileStamp struct {
	info os.FileInfo
	mod  time.Time
	size int64
}

func (a fileStamp) same(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil
	}
	return os.SameFile(a.info, b.info) && a.mod.Equal(b.mod) && a.size == b.size
}

// TokenFile returns the path of the token file of the installation whose
// MBR is mbrPath.
func TokenFile(mbrPath string) string {
	return filepath.Join(filepath.Dir(mbrPath), TokenFileName)
}

// OpenTokens returns the token store at path. The file need not exist yet.
func OpenTokens(path string) *Tokens { return &Tokens{path: path} }

// Path returns the token file's path.
func (t *Tokens) Path() string { return t.path }

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Create makes a new admin token called name and returns it; this is the
// only time the token is seen. It fails with ErrTokenExists if name is taken.
func (t *Tokens) Create(name string) (string, error) { return t.CreateFor(name, "") }

// CreateFor makes a new token called name that acts as user ("" an
// installation admin token), as Create does. Whether user exists is the
// caller's to check (Session.CreateToken does).
func (t *Tokens) CreateFor(name, user string) (string, error) {
	if !tokenNameRE.MatchString(name) {
		return "", fmt.Errorf("token name %q: %w: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name, ErrBadTokenName)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	err := t.update(func(f *tokenFile) error {
		for _, ti := range f.Tokens {
			if ti.Name == name {
				return fmt.Errorf("token %q: %w; revoke it first or choose another name", name, ErrTokenExists)
			}
		}
		f.Tokens = append(f.Tokens, TokenInfo{Name: name, User: user, Hash: hashToken(token), Created: time.Now().UTC().Truncate(time.Second)})
		return nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Revoke removes the token called name.
func (t *Tokens) Revoke(name string) error {
	return t.update(func(f *tokenFile) error {
		for i, ti := range f.Tokens {
			if ti.Name == name {
				f.Tokens = append(f.Tokens[:i], f.Tokens[i+1:]...)
				return nil
			}
		}
		names := make([]string, len(f.Tokens))
		for i, ti := range f.Tokens {
			names[i] = ti.Name
		}
		return fmt.Errorf("token %q: %w%s", name, ErrTokenUnknown, Suggest(name, names))
	})
}

// List returns the tokens by name, without their secrets.
func (t *Tokens) List() ([]TokenInfo, error) {
	f, err := t.read()
	if err != nil {
		return nil, err
	}
	sort.Slice(f.Tokens, func(i, j int) bool { return f.Tokens[i].Name < f.Tokens[j].Name })
	return f.Tokens, nil
}

// Verify returns the token's entry, or an error wrapping ErrBadToken. It
// compares the token's hash with every stored one in constant time, so the
// time taken says nothing about how close a guess was.
func (t *Tokens) Verify(token string) (TokenInfo, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return TokenInfo{}, ErrBadToken
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.reloadLocked(); err != nil {
		return TokenInfo{}, err
	}
	h := []byte(hashToken(token))
	var found TokenInfo
	ok := 0
	for stored, ti := range t.byHash {
		if subtle.ConstantTimeCompare([]byte(stored), h) == 1 {
			found, ok = ti, 1
		}
	}
	if ok == 0 {
		return TokenInfo{}, ErrBadToken
	}
	return found, nil
}

// reloadLocked re-reads the file when its size or time changed.
func (t *Tokens) reloadLocked() error {
	st, err := os.Stat(t.path)
	var now fileStamp
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("token file %s: %w", t.path, err)
	default:
		now = fileStamp{info: st, mod: st.ModTime(), size: st.Size()}
	}
	if t.byHash != nil && now.same(t.stamp) {
		return nil
	}
	f, err := t.read()
	if err != nil {
		return err
	}
	t.byHash = make(map[string]TokenInfo, len(f.Tokens))
	for _, ti := range f.Tokens {
		t.byHash[ti.Hash] = ti
	}
	t.stamp = now
	return nil
}

func (t *Tokens) read() (tokenFile, error) {
	b, err := os.ReadFile(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return tokenFile{Version: 1}, nil
	}
	if err != nil {
		return tokenFile{}, fmt.Errorf("read token file: %w", err)
	}
	return parseTokenFile(b, t.path)
}

// parseTokenFile decodes a token file strictly, naming the file on error.
func parseTokenFile(b []byte, path string) (tokenFile, error) {
	var f tokenFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return tokenFile{}, fmt.Errorf("token file %s: %v; fix it or remove it and create tokens again", path, err)
	}
	if f.Version == 0 && len(f.Tokens) == 0 {
		f.Version = 1
	}
	if f.Version != 1 {
		return tokenFile{}, fmt.Errorf("token file %s: version %d is not supported (want 1)", path, f.Version)
	}
	for i, ti := range f.Tokens {
		f.Tokens[i].Hash = strings.ToLower(ti.Hash)
		if ti.Name == "" {
			return tokenFile{}, fmt.Errorf("token file %s: token %d has no name", path, i+1)
		}
		if b, err := hex.DecodeString(ti.Hash); err != nil || len(b) != sha256.Size {
			return tokenFile{}, fmt.Errorf("token file %s: token %q: sha256 must be 64 hex digits", path, ti.Name)
		}
	}
	return f, nil
}

// update applies fn to the file's contents and writes it back atomically.
// It holds the store's lock; two processes writing at once may lose one
// change, which only `fleetvault token` and `init` do, by hand.
func (t *Tokens) update(fn func(*tokenFile) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.read()
	if err != nil {
		return err
	}
	if err := fn(&f); err != nil {
		return err
	}
	f.Version = 1
	b, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode token file: %w", err)
	}
	b = append([]byte("# Fleetvault API tokens: SHA-256 of each token, never the token itself.\n# Manage with: fleetvault token create|list|revoke\n"), b...)
	if err := writeFileAtomic(t.path, b, 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	t.byHash = nil // reload on next Verify
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
