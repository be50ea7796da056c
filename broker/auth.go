package broker

import (
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

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
	reasonLockedOut = "locked-out"  // the identity or the address is locked out after failed logins
)

// Lockout scopes, as logged and counted.
const (
	scopeClientID = "client-id"
	scopeAddress  = "address"
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

// authenticate decides whether a CONNECT may proceed, and as whom: a
// locked-out identity or address is refused before any password is checked,
// and every failure the client could have avoided counts towards a lockout.
func (b *Broker) authenticate(cl *mqtt.Client, pk packets.Packet) (Identity, error) {
	now := b.opts.Now()
	user := string(pk.Connect.Username)
	key, tracked := b.limitKey(cl.Net.Remote)
	addr := key.String()
	if until, locked := b.addrLock.lockedUntil(addr, now); tracked && locked {
		return Identity{}, &errRefused{reasonLockedOut, "address " + addr + " locked out until " + until.UTC().Format(time.RFC3339)}
	}
	if until, locked := b.idLock.lockedUntil(user, now); user != "" && locked {
		return Identity{}, &errRefused{reasonLockedOut, "identity locked out until " + until.UTC().Format(time.RFC3339)}
	}
	id, err := b.checkCredentials(cl, pk)
	var r *errRefused
	switch {
	case err == nil:
		b.idLock.succeed(user)
	case errors.As(err, &r) && r.reason != reasonError:
		if r.reason == reasonPassword { // only a known identity has an entry
			if d, started := b.idLock.fail(user, now); started {
				b.lockedOut(scopeClientID, user, d)
			}
		}
		if !tracked {
			break
		}
		if d, started := b.addrLock.fail(addr, now); started {
			b.lockedOut(scopeAddress, addr, d)
		}
	}
	return id, err
}

// lockedOut counts and logs the start of a lockout.
func (b *Broker) lockedOut(scope, who string, d time.Duration) {
	if scope == scopeAddress {
		b.stats.lockoutsAddr.Add(1)
	} else {
		b.stats.lockoutsID.Add(1)
	}
	b.warn("mqtt logins locked out after repeated failures", "scope", scope, scope, truncate(who), "for", d.String())
}

// checkCredentials checks the identity, client id and password of a CONNECT.
func (b *Broker) checkCredentials(cl *mqtt.Client, pk packets.Packet) (Identity, error) {
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
		mqtt.OnDisconnect, mqtt.OnPublishDropped, mqtt.OnPacketRead, mqtt.OnPacketEncode:
		return true
	}
	return false
}

// OnConnectAuthenticate refuses unknown identities, wrong passwords, devices
// using another client id and locked-out clients; mochi then answers CONNACK
// "not authorized" (MQTT 3.1.1 return code 5, v5 reason 0x86; a lockout
// gets v5 0x9F, see OnPacketEncode).
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	gc, isGated := gated(cl.Net.Conn)
	id, err := h.b.authenticate(cl, pk)
	if err != nil {
		var r *errRefused
		reason := reasonError
		if errors.As(err, &r) {
			reason = r.reason
		}
		if reason == reasonLockedOut && isGated {
			gc.refusal.Store(&refusal{v3: packets.Err3NotAuthorized, v5: packets.ErrConnectionRateExceeded})
		}
		h.b.stats.authFailure(reason)
		h.b.warn("mqtt connection refused", "reason", reason, "error", err.Error(),
			"client", truncate(cl.ID), "username", truncate(string(pk.Connect.Username)), "remote", cl.Net.Remote)
		return false
	}
	if id.Role == RoleServer {
		h.b.servers.Store(cl, struct{}{})
	}
	if isGated {
		gc.authenticated()
	}
	return true
}

// OnACLCheck applies the topic rules: a device reads only its request topic
// and writes only its response topic; a server writes request topics and
// reads response topics. Refused publishes were already answered, counted
// and logged when read (OnPacketRead); refused reads are counted here.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	ok := h.b.may(cl, topic, write)
	if !ok && !write {
		h.b.denied(cl, topic, false)
	}
	return ok
}

// may reports whether the network client cl may write (publish to) or read
// topic.
func (b *Broker) may(cl *mqtt.Client, topic string, write bool) bool {
	if b.isServer(cl) {
		return serverMay(topic, write)
	}
	return deviceMay(b.nameOf(cl), topic, write)
}

// denied counts and logs a refused topic access.
func (b *Broker) denied(cl *mqtt.Client, topic string, write bool) {
	action := "subscribe"
	if write {
		action = "publish"
	}
	b.stats.aclDenial(write)
	b.warn("mqtt topic denied", "action", action, "client", truncate(cl.ID),
		"username", truncate(string(cl.Properties.Username)), "topic", truncate(topic))
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
