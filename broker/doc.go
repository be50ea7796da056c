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
// A refused subscription gets a SUBACK failure code; a refused publish is
// dropped (an MQTT 3.1.1 client publishing at QoS 1 is also disconnected, as
// mochi does). Refusals are counted (Stats, Collector) and logged at warn,
// rate-limited.
//
// The server inside the same process can skip the network: Publish and
// Subscribe use mochi's inline client. See docs/broker.md for the choice
// between the inline client and a loopback connection.
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
