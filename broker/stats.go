package broker

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the broker's counters since it was created.
type Stats struct {
	Connected int64 // clients connected now (devices and servers)

	AuthFailures   int64 // connections refused, all reasons
	AuthUnknown    int64 // no such identity
	AuthPassword   int64 // wrong password
	AuthClientID   int64 // a device whose client id is not its name, or a server's bad client id
	AuthAnonymous  int64 // no username while anonymous access is off
	AuthStoreError int64 // the credentials store failed or holds a bad entry
	AuthLockedOut  int64 // refused without checking the password: the client id or address is locked out
	AuthCacheHits  int64 // connections verified from the cache, without argon2id

	ACLDenials          int64 // topic accesses refused, both kinds
	ACLPublishDenials   int64 // publishes refused (the message is dropped)
	ACLSubscribeDenials int64 // subscriptions refused (SUBACK failure code)

	Dropped int64 // messages dropped because a client's pending-writes queue was full

	Unauthenticated    int64 // connections accepted and not authenticated yet, now
	PreAuthTimeouts    int64 // closed: no complete CONNECT within ConnectTimeout
	PreAuthTooLarge    int64 // closed: CONNECT larger than MaxConnectSize
	PreAuthNotConnect  int64 // closed: the first packet was not a CONNECT
	PreAuthRateLimited int64 // closed at accept: the address exceeded ConnectRate
	PreAuthAddrLimited int64 // closed at accept: the address had MaxUnauthenticatedPerAddr pending
	LockoutsClientID   int64 // lockouts started for an identity
	LockoutsAddress    int64 // lockouts started for an address
}

// counters are the live, atomically updated form of Stats.
type counters struct {
	connected                                                atomic.Int64
	unknown, password, clientID, anonymous, storeErr         atomic.Int64
	cacheHits, aclPublish, aclSubscribe, dropped, suppressed atomic.Int64
	lockedOut, lockoutsID, lockoutsAddr                      atomic.Int64

	unauthenticated                                          atomic.Int64
	timeouts, tooLarge, notConnect, rateLimited, addrLimited atomic.Int64
}

func (c *counters) authFailure(reason string) {
	switch reason {
	case reasonUnknown:
		c.unknown.Add(1)
	case reasonPassword:
		c.password.Add(1)
	case reasonClientID:
		c.clientID.Add(1)
	case reasonAnonymous:
		c.anonymous.Add(1)
	case reasonLockedOut:
		c.lockedOut.Add(1)
	default:
		c.storeErr.Add(1)
	}
}

func (c *counters) aclDenial(write bool) {
	if write {
		c.aclPublish.Add(1)
	} else {
		c.aclSubscribe.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Connected:           c.connected.Load(),
		AuthUnknown:         c.unknown.Load(),
		AuthPassword:        c.password.Load(),
		AuthClientID:        c.clientID.Load(),
		AuthAnonymous:       c.anonymous.Load(),
		AuthStoreError:      c.storeErr.Load(),
		AuthCacheHits:       c.cacheHits.Load(),
		ACLPublishDenials:   c.aclPublish.Load(),
		ACLSubscribeDenials: c.aclSubscribe.Load(),
		Dropped:             c.dropped.Load(),
		AuthLockedOut:       c.lockedOut.Load(),
		Unauthenticated:     c.unauthenticated.Load(),
		PreAuthTimeouts:     c.timeouts.Load(),
		PreAuthTooLarge:     c.tooLarge.Load(),
		PreAuthNotConnect:   c.notConnect.Load(),
		PreAuthRateLimited:  c.rateLimited.Load(),
		PreAuthAddrLimited:  c.addrLimited.Load(),
		LockoutsClientID:    c.lockoutsID.Load(),
		LockoutsAddress:     c.lockoutsAddr.Load(),
	}
	s.AuthFailures = s.AuthUnknown + s.AuthPassword + s.AuthClientID + s.AuthAnonymous + s.AuthStoreError + s.AuthLockedOut
	s.ACLDenials = s.ACLPublishDenials + s.ACLSubscribeDenials
	return s
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats { return b.stats.snapshot() }

// Collector returns a Prometheus collector for the broker's counters, for the
// server to register:
//
//	fleetvault_broker_connected_clients                gauge
//	fleetvault_broker_auth_failures_total{reason}      counter: unknown, password, client-id, anonymous, store-error, locked-out
//	fleetvault_broker_auth_cache_hits_total            counter
//	fleetvault_broker_acl_denials_total{action}        counter: publish, subscribe
//	fleetvault_broker_dropped_messages_total           counter
//	fleetvault_broker_unauthenticated_connections      gauge
//	fleetvault_broker_preauth_closed_total{reason}     counter: timeout, too-large, not-connect, rate-limit, address-limit
//	fleetvault_broker_lockouts_total{scope}            counter: client-id, address
func (b *Broker) Collector() prometheus.Collector { return &collector{b: b} }

type collector struct{ b *Broker }

var _ prometheus.Collector = (*collector)(nil)

var (
	descConnected = prometheus.NewDesc("fleetvault_broker_connected_clients",
		"MQTT clients connected to the embedded broker now.", nil, nil)
	descAuthFailures = prometheus.NewDesc("fleetvault_broker_auth_failures_total",
		"MQTT connections refused by the embedded broker, by reason.", []string{"reason"}, nil)
	descCacheHits = prometheus.NewDesc("fleetvault_broker_auth_cache_hits_total",
		"MQTT connections verified from the credentials cache.", nil, nil)
	descACLDenials = prometheus.NewDesc("fleetvault_broker_acl_denials_total",
		"Topic accesses refused by the embedded broker's ACL, by action.", []string{"action"}, nil)
	descDropped = prometheus.NewDesc("fleetvault_broker_dropped_messages_total",
		"Messages dropped because a client's pending-writes queue was full.", nil, nil)
	descUnauthenticated = prometheus.NewDesc("fleetvault_broker_unauthenticated_connections",
		"Connections accepted by the embedded broker that have not authenticated yet.", nil, nil)
	descPreAuthClosed = prometheus.NewDesc("fleetvault_broker_preauth_closed_total",
		"Connections the embedded broker closed before login, by reason.", []string{"reason"}, nil)
	descLockouts = prometheus.NewDesc("fleetvault_broker_lockouts_total",
		"Lockouts after repeated failed logins, by scope.", []string{"scope"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConnected
	ch <- descAuthFailures
	ch <- descCacheHits
	ch <- descACLDenials
	ch <- descDropped
	ch <- descUnauthenticated
	ch <- descPreAuthClosed
	ch <- descLockouts
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, float64(s.Connected))
	for _, r := range []struct {
		reason string
		n      int64
	}{
		{reasonUnknown, s.AuthUnknown}, {reasonPassword, s.AuthPassword}, {reasonClientID, s.AuthClientID},
		{reasonAnonymous, s.AuthAnonymous}, {reasonError, s.AuthStoreError}, {reasonLockedOut, s.AuthLockedOut},
	} {
		ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(r.n), r.reason)
	}
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(s.AuthCacheHits))
	ch <- prometheus.MustNewConstMetric(descACLDenials, prometheus.CounterValue, float64(s.ACLPublishDenials), "publish")
	ch <- prometheus.MustNewConstMetric(descACLDenials, prometheus.CounterValue, float64(s.ACLSubscribeDenials), "subscribe")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(descUnauthenticated, prometheus.GaugeValue, float64(s.Unauthenticated))
	for _, r := range []struct {
		reason string
		n      int64
	}{
		{"timeout", s.PreAuthTimeouts}, {"too-large", s.PreAuthTooLarge}, {"not-connect", s.PreAuthNotConnect},
		{"rate-limit", s.PreAuthRateLimited}, {"address-limit", s.PreAuthAddrLimited},
	} {
		ch <- prometheus.MustNewConstMetric(descPreAuthClosed, prometheus.CounterValue, float64(r.n), r.reason)
	}
	ch <- prometheus.MustNewConstMetric(descLockouts, prometheus.CounterValue, float64(s.LockoutsClientID), scopeClientID)
	ch <- prometheus.MustNewConstMetric(descLockouts, prometheus.CounterValue, float64(s.LockoutsAddress), scopeAddress)
}
