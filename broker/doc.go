// Package broker is Fleetvault's embedded MQTT broker: mochi-mqtt v2 with
// device authentication, a topic ACL for the media-agent protocol, presence
// callbacks and counters.
//
// # Basics
//
// Every device connects with its device id as both MQTT client id and
// username, and a secret made by NewSecret as password; the credentials store
// (Credentials, implemented by the resource database) keeps only the argon2id
// hash (HashPassword). The server connects with a RoleServer identity.
//
//	b, err := broker.New(broker.Options{TCPAddr: ":1883", Credentials: creds, Logger: log})
//	if err != nil { ... }
//	if err := b.Start(ctx); err != nil { ... }
//	defer b.Close()
//
// The ACL allows exactly what the protocol needs:
//
//	device d   subscribe fleetvault/v1/d/req   publish fleetvault/v1/d/res
//	server     publish fleetvault/v1/<any>/req subscribe fleetvault/v1/+/res (or one device's, or $share/<g>/...)
//
// A refused subscription gets a SUBACK failure code; a refused publish
// ($SYS included) is dropped and, at QoS 1, acknowledged: a plain PUBACK for
// MQTT 3.1.1, PUBACK 0x87 for MQTT 5. Refusals are counted (Stats,
// Collector) and logged at warn, rate-limited. CONNACK codes sent to a 3.1.1
// client stay within 0x00-0x05; an empty password is a wrong password.
//
// # Limits before login
//
// Before mochi sees a connection, the broker's listeners admit it (TCP, TLS
// and WebSocket alike): per address (an IPv4 address or an IPv6 /64, loopback
// exempt unless LimitLoopback), at most ConnectRate new connections a second
// (bursts of ConnectBurst) and MaxUnauthenticatedPerAddr not yet
// authenticated; then a complete CONNECT of at most MaxConnectSize bytes must
// arrive within ConnectTimeout. After login, MaxPacketSize applies.
//
//	ConnectTimeout            10 s   from accept to a complete CONNECT
//	MaxConnectSize            4 KiB  the largest CONNECT; a larger header is closed at once
//	MaxUnauthenticatedPerAddr 100    pending logins per address (negative: none)
//	ConnectRate, ConnectBurst 50/s, 500  new connections per address (negative rate: none)
//	LimitLoopback             false  apply the per-address limits to loopback too
//
// # Lockout
//
// Failed logins lock out the identity (LockoutThreshold, default 10, counting
// wrong passwords of a known identity) or the address (LockoutAddrThreshold,
// default 100, counting every avoidable failure) when they happen within
// LockoutWindow (10 min): for LockoutDuration (1 min), doubling with each
// lockout that follows within the window, up to MaxLockout (30 min). During a
// lockout even the right password is refused: CONNACK 0x05 (3.1.1) or 0x9F
// (5). Now is the clock (tests inject one). Lockouts are logged at warn and
// counted.
//
// CheckPassword is the minimum strength of a password Fleetvault creates or
// imports: 12 characters, 6 of them different.
//
// The server inside the same process can skip the network: Publish and
// Subscribe use mochi's inline client. See docs/broker.md for the choice
// between the inline client and a loopback connection.
//
// A broker running as a process of its own (fleetvault broker, a broker
// shard) reads its identities from a credentials file instead of the
// resource database, whose lock the server holds: OpenCredentialsFile loads
// it, FileCredentials.Refresh and Reload re-read it, and
// WriteCredentialsFile writes one atomically.
//
// # Caveats
//
// Each connection costs two goroutines and its buffers; docs/broker.md gives
// the measured memory per connection and the file-descriptor limit (ulimit -n)
// needed for 100,000 devices. Messages for a client whose pending-writes
// queue (MaxPendingWrites) is full are dropped and counted: a server that
// connects over the network must read promptly.
//
// Package brokertest starts an embedded broker or a real Mosquitto for tests.
package broker
