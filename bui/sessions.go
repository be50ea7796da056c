package bui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is one person logged on in one browser.
type session struct {
	id      string // the cookie's value: 256 random bits
	user    string
	csrf    string // the token every form of this session carries
	viewAs  string // the data owner an admin views the service as; "" none
	created time.Time
	seen    time.Time
}

// sessionStore keeps sessions in memory, at most limit of them: when full,
// the expired go first, then the least recently seen.
type sessionStore struct {
	idle, max time.Duration
	limit     int
	now       func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func newSessionStore(idle, max time.Duration, limit int, now func() time.Time) *sessionStore {
	return &sessionStore{idle: idle, max: max, limit: limit, now: now, m: map[string]*session{}}
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// create starts a session for user.
func (st *sessionStore) create(user string) (*session, error) {
	id, err := randomToken()
	if err != nil {
		return nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := st.now()
	s := &session{id: id, user: user, csrf: csrf, created: now, seen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.m) >= st.limit {
		st.evictLocked(now)
	}
	st.m[id] = s
	return s, nil
}

// get returns the live session id names and marks it seen; an expired one
// is removed and not returned.
func (st *sessionStore) get(id string) (*session, bool) {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return nil, false
	}
	if st.expired(s, now) {
		delete(st.m, id)
		return nil, false
	}
	s.seen = now
	cp := *s
	return &cp, true
}

// update changes a live session.
func (st *sessionStore) update(id string, fn func(*session)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.m[id]; ok {
		fn(s)
	}
}

// remove ends a session (log out).
func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

// removeUser ends every session of user (after a password change
// elsewhere, for instance); keep, if not "", stays.
func (st *sessionStore) removeUser(user, keep string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, s := range st.m {
		if s.user == user && id != keep {
			delete(st.m, id)
		}
	}
}

func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}

func (st *sessionStore) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) > st.idle || now.Sub(s.created) > st.max
}

func (st *sessionStore) evictLocked(now time.Time) {
	var oldest *session
	for id, s := range st.m {
		if st.expired(s, now) {
			delete(st.m, id)
			continue
		}
		if oldest == nil || s.seen.Before(oldest.seen) {
			oldest = s
		}
	}
	if len(st.m) >= st.limit && oldest != nil {
		delete(st.m, oldest.id)
	}
}

// sameToken compares two tokens in constant time; an empty one never
// matches.
func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
