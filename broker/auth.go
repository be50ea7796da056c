package broker

import (
	"crypto/sha256"
	"errors"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Reasons a connection is refused, as counted in Stats and the Prometheus
// collector's reason label.
const (
	reasonAnonymous = "anonymous"   // no username, and anonymous access is off
	reasonUnknown   = "unknown"     // no such identity (or an invalid name)
	reasonPassword  = "password"    // wrong password
	reasonClientID  = "client-id"   // a device whose client id is not its name
	reasonError     = "store-error" // the credentials store failed, or holds a bad entry
)

// authCache remembers credentials that verified, so that a reconnect storm
// costs one SHA-256 per connection instead of one argon2id. An entry is keyed
// by username and holds the SHA-256 of the password presented and of the
// stored hash it verified against: a changed stored hash misses the cache.
// Failed attempts are never cached.
type authCache struct {
	mu  sync.Mutex
	max int
	m   map[string]cacheEntry
}

type cacheEntry struct {
	pw, hash [sha256.Size]byte
}

func newAuthCache(max int) *authCache {
	if max <= 0 {
		return nil
	}
	return &authCache{max: max, m: make(map[string]cacheEntry)}
}

// hit reports whether user's password pw is known to match hash.
func (c *authCache) hit(user string, e cacheEntry) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	got, ok := c.m[user]
	return ok && got == e
}

// add remembers a verified password, evicting an arbitrary entry when full.
func (c *authCache) add(user string, e cacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[user]; !ok && len(c.m) >= c.max {
		for k := range c.m { // map order is random enough for eviction
			delete(c.m, k)
			break
		}
	}
	c.m[user] = e
}

// errRefused carries the reason for refusing a connection.
type errRefused struct{ reason, detail string }

func (e *errRefused) Error() string { return e.reason + ": " + e.detail }

// authenticate decides whether a CONNECT may proceed, and as whom.
func (b *Broker) authenticate(cl *mqtt.Client, pk packets.Packet) (Identity, error) {
	user := string(pk.Connect.Username)
	if user == "" {
		if b.opts.AllowAnonymous && ValidName(cl.ID) {
			return Identity{Name: cl.ID, Role: RoleDevice}, nil
		}
		return Identity{}, &errRefused{reasonAnonymous, "no username"}
	}
	if !ValidName(user) {
		return Identity{}, &errRefused{reasonUnknown, "invalid username"}
	}
	id, found, err := b.creds.Lookup(user)
	switch {
	case err != nil:
		return Identity{}, &errRefused{reasonError, "credentials lookup: " + err.Error()}
	case !found:
		return Identity{}, &errRefused{reasonUnknown, "no such identity"}
	case id.Name != user:
		return Identity{}, &errRefused{reasonError, "credentials store returned identity " + truncate(id.Name)}
	}
	switch id.Role {
	case RoleDevice:
		if cl.ID != user {
			return Identity{}, &errRefused{reasonClientID, "a device's client id must be its name"}
		}
	case RoleServer:
		// A server may run several connections, as name or name:suffix; ':'
		// is not allowed in a device id, so it can never take over a device's session.
		if cl.ID != user && !strings.HasPrefix(cl.ID, user+":") {
			return Identity{}, &errRefused{reasonClientID, "a server's client id must be its name or name:suffix"}
		}
	default:
		return Identity{}, &errRefused{reasonError, "identity has " + id.Role.String()}
	}
	ok, err := b.verify(user, id.PasswordHash, pk.Connect.Password)
	if err != nil {
		return Identity{}, &errRefused{reasonError, "stored password hash: " + err.Error()}
	}
	if !ok {
		return Identity{}, &errRefused{reasonPassword, "wrong password"}
	}
	return id, nil
}

// verify checks pw against hash through the cache, bounding how many argon2id
// computations run at once so a connection storm cannot exhaust memory.
func (b *Broker) verify(user, hash string, pw []byte) (bool, error) {
	e := cacheEntry{pw: sha256.Sum256(pw), hash: sha256.Sum256([]byte(hash))}
	if b.cache.hit(user, e) {
		b.stats.cacheHits.Add(1)
		return true, nil
	}
	b.verifySem <- struct{}{}
	ok, err := VerifyPassword(hash, string(pw))
	<-b.verifySem
	if ok {
		b.cache.add(user, e)
	}
	return ok, err
}

// hook plugs the broker's authentication, ACL and presence into mochi.
type hook struct {
	mqtt.HookBase
	b *Broker
}

var _ mqtt.Hook = (*hook)(nil)

func (h *hook) ID() string { return "fleetvault" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablished,
		mqtt.OnDisconnect, mqtt.OnPublishDropped:
		return true
	}
	return false
}

// OnConnectAuthenticate refuses unknown identities, wrong passwords and
// devices using another client id; mochi then answers CONNACK "not
// authorized" (MQTT 3.1.1 return code 5, v5 reason 0x86).
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	id, err := h.b.authenticate(cl, pk)
	if err != nil {
		var r *errRefused
		reason := reasonError
		if errors.As(err, &r) {
			reason = r.reason
		}
		h.b.stats.authFailure(reason)
		h.b.warn("mqtt connection refused", "reason", reason, "error", err.Error(),
			"client", truncate(cl.ID), "username", truncate(string(pk.Connect.Username)), "remote", cl.Net.Remote)
		return false
	}
	if id.Role == RoleServer {
		h.b.servers.Store(cl, struct{}{})
	}
	return true
}

// OnACLCheck applies the topic rules: a device reads only its request topic
// and writes only its response topic; a server writes request topics and
// reads response topics.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	var ok bool
	if h.b.isServer(cl) {
		ok = serverMay(topic, write)
	} else {
		ok = deviceMay(h.b.nameOf(cl), topic, write)
	}
	if !ok {
		action := "subscribe"
		if write {
			action = "publish"
		}
		h.b.stats.aclDenial(write)
		h.b.warn("mqtt topic denied", "action", action, "client", truncate(cl.ID),
			"username", truncate(string(cl.Properties.Username)), "topic", truncate(topic))
	}
	return ok
}

// OnSessionEstablished records a connected client and reports a device online.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.b.presence(cl, true)
}

// OnDisconnect reports a device offline, unless a newer connection with the
// same client id has already taken over its session.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.b.presence(cl, false)
	h.b.servers.Delete(cl)
}

// OnPublishDropped counts messages mochi could not queue for a slow client.
func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.b.stats.dropped.Add(1)
	h.b.warn("mqtt message dropped: client's pending writes full", "client", truncate(cl.ID), "topic", truncate(pk.TopicName))
}

// isServer reports whether cl authenticated with a server identity.
func (b *Broker) isServer(cl *mqtt.Client) bool {
	_, ok := b.servers.Load(cl)
	return ok
}

// nameOf returns the identity name a non-server client is bound by: its
// username, or for an anonymous client its client id.
func (b *Broker) nameOf(cl *mqtt.Client) string {
	if len(cl.Properties.Username) > 0 {
		return string(cl.Properties.Username)
	}
	return cl.ID
}
