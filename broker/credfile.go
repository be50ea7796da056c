package broker

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"
)

// MarshalCredentials returns the credentials file (LoadCredentialsFile's
// format) holding ids, sorted by name so that the same identities give the
// same bytes.
func MarshalCredentials(ids []Identity) ([]byte, error) {
	entries := make([]credentialEntry, len(ids))
	for i, id := range ids {
		if !ValidName(id.Name) {
			return nil, fmt.Errorf("broker: credentials: name %q is not a valid identity name", truncate(id.Name))
		}
		entries[i] = credentialEntry{Name: id.Name, Role: id.Role.String(), PasswordHash: id.PasswordHash}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(entries); err != nil {
		return nil, fmt.Errorf("broker: credentials: %w", err)
	}
	return b.Bytes(), enc.Close()
}

// WriteCredentialsFile writes ids to path atomically (a temporary file
// renamed over it), so that a broker reloading the file never reads half of
// it. It reports whether the file changed.
func WriteCredentialsFile(path string, ids []Identity) (changed bool, err error) {
	b, err := MarshalCredentials(ids)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return false, fmt.Errorf("broker: credentials file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := io.Copy(tmp, bytes.NewReader(b)); err != nil {
		tmp.Close()
		return false, fmt.Errorf("broker: credentials file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("broker: credentials file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("broker: credentials file %s: %w", path, err)
	}
	return true, nil
}

// FileCredentials are the identities of a credentials file, re-read by
// Reload: a broker outside the server's process (fleetvault broker) serves
// the file the server exports for its shard. A file that fails to load
// leaves the identities as they were.
type FileCredentials struct {
	path string
	mu   sync.Mutex // serializes Reload
	cur  atomic.Pointer[StaticCredentials]
	stat fileStamp
}

var _ Credentials = (*FileCredentials)(nil)

type fileStamp struct {
	mod  time.Time
	size int64
}

// OpenCredentialsFile loads path; see FileCredentials.
func OpenCredentialsFile(path string) (*FileCredentials, error) {
	f := &FileCredentials{path: path}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Lookup returns the identity named username in the last good load.
func (f *FileCredentials) Lookup(username string) (Identity, bool, error) {
	return (*f.cur.Load()).Lookup(username)
}

// Reload re-reads the file (on SIGHUP, say). It returns the number of
// identities; on error the previous identities stay in force.
func (f *FileCredentials) Reload() (int, error) {
	n, _, err := f.load(true)
	return n, err
}

// Refresh re-reads the file if its modification time or size changed since
// the last load, and reports whether it did.
func (f *FileCredentials) Refresh() (n int, loaded bool, err error) {
	return f.load(false)
}

func (f *FileCredentials) load(force bool) (n int, loaded bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return f.len(), false, fmt.Errorf("broker: credentials file: %w", err)
	}
	stamp := fileStamp{st.ModTime(), st.Size()}
	if !force && f.cur.Load() != nil && stamp == f.stat {
		return f.len(), false, nil
	}
	c, err := LoadCredentialsFile(f.path)
	if err != nil {
		return f.len(), false, err
	}
	f.cur.Store(&c)
	f.stat = stamp
	return len(c), true, nil
}

func (f *FileCredentials) len() int {
	if c := f.cur.Load(); c != nil {
		return len(*c)
	}
	return 0
}
