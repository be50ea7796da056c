// Package coap carries the media-agent protocol (package agent) over CoAP
// (RFC 7252) with blockwise transfer (RFC 7959), using go-coap v3.
//
// # Resources
//
// A device serves three resources; every payload is CBOR (content format 60):
//
//	GET  /fleetvault/v1/tag       READ:SETTINGS?TAG            query: v, id, ident [, job]
//	GET  /fleetvault/v1/settings  READ:SETTINGS?SETTINGS       query: v, id, ident [, job]
//	PUT  /fleetvault/v1/settings  WRITE:SETTINGS?TAG+SETTINGS  payload: the whole agent.Request
//	POST /fleetvault/v1/request   any other identifier         payload: the whole agent.Request
//
// Every answer's payload is an agent.Response: 2.05 Content for a GET, 2.04
// Changed for a PUT or POST, and for a refusal a 4.xx or 5.xx code chosen by
// the Response's error code (bad-request 4.00, not-addressee 4.04,
// too-large 4.13, conflict 4.09, rejected 4.22, unsupported 5.01, internal
// 5.00). A GET carries the request in Uri-Query options, so a plain CoAP client
// can probe a device:
//
//	coap-client-openssl -u dev1 -k "$KEY" -m get 'coaps://127.0.0.1:5684/fleetvault/v1/tag?v=1&id=x&ident=coaps://127.0.0.1:5684?READ:SETTINGS?TAG'
//
// # Security
//
// Devices and the server speak CoAP over DTLS 1.2 with a pre-shared key per
// device (coaps://, docs/spec/agent-coap.md section 8), through go-coap's
// DTLS support on pion/dtls. NewSecureServer serves a device over DTLS and
// answers a plain request 4.01 Unauthorized without reaching its Handler.
// The Transport reaches coaps:// devices with the key TransportOptions.Keys
// finds for the device the context names (agent.WithDevice): the PSK
// identity is the device id. It refuses coap:// (ErrInsecure) unless
// TransportOptions.Insecure, and NewServer serves plain CoAP: both are for a
// lab. Both sides split their one UDP socket per DTLS peer themselves
// (datagrams.go), so a secure device still costs one socket, and the server
// one secure socket for all devices. The lean paths below apply to plain
// CoAP only: over DTLS every datagram is a record to decrypt, and go-coap
// carries every exchange; what that costs is in docs/BENCHMARKS.md.
//
// # Device side
//
// Listen (or NewServer on a socket already bound) serves one agent.Handler on
// one UDP port. A Group shares the housekeeping of many servers, so a
// simulator can run tens of thousands of devices in one process: each device
// costs its socket, one goroutine blocked reading it and a small read buffer.
//
// The goroutine reading the socket answers a confirmable GET, PUT or POST that
// fits one block itself, with a piggybacked acknowledgement, and keeps its
// last answer for a retransmission (devicefast.go). Everything else
// (blockwise transfers, an answer over one block, non-confirmable requests,
// pings, unknown critical options, malformed datagrams) goes to a go-coap
// connection for that peer on the same socket, opened on first need and
// swept by the Group's timer (devicecoap.go).
//
// # Server side
//
// Transport implements agent.Transport. It sends every single-block request
// from one UDP socket, encoded with go-coap's message codec; one goroutine
// reads that socket and hands each answer straight to the Do waiting for it,
// matched by message id and token; Do retransmits on its own timer (RFC 7252
// section 4.2), one exchange at a time per device (NSTART 1), and at most
// TransportOptions.MaxInFlight on the socket (exchange.go). A request over one
// block, or an answer that comes back with a Block option, is carried by
// go-coap's blockwise transfer from a second socket. Per-device state (its
// message ids, the exchange outstanding) is kept only for devices in use:
// bounded by TransportOptions.MaxPeers, forgotten after IdleTimeout.
//
// # Why not go-coap for every exchange
//
// go-coap hands every datagram from the socket's read loop to a goroutine per
// peer, looks the peer up by a formatted address string and scans its expiry
// lists on every datagram, caches every answer for 247 s, and retransmits from
// a one-second sweep over all peers. Measured with BenchmarkProbeRatio (both
// sides in one process, loopback, 2 shared cores): with go-coap on both sides
// a tag probe cost 83-104 us of CPU at 1,000 devices and 130-191 us at
// 10,000; with the lean paths it costs 24-32 us, and the transport answers
// 23,000 to 78,000 probes/s at 10,000 devices, 3.2-4.4 times a bare go-coap
// echo in the same run; a group restore of 10,000 devices (probe and write)
// takes 0.29 s on an idle machine, 1.05-1.20 s before (docs/BENCHMARKS.md, "CoAP (agent/coap)"). The lean paths
// carry only what fits a block; blockwise stays go-coap's, which libcoap
// interoperates with (interop_test.go).
//
// # Caveats
//
// An unconnected UDP socket does not learn about ICMP port-unreachable
// messages, so a device that is down is reported as agent.ErrTimeout when its
// context ends; agent.ErrUnreachable is returned when the address does not
// resolve, the network refuses the send, the device resets the exchange, or
// MaxRetransmit retransmissions go unanswered before the context ends.
//
// Blockwise transfers come from the transport's second socket, so a device
// sees two source ports; RFC 7252 has a device answer each request where it
// came from, which is all this needs.
//
// A device's handler runs on the goroutine reading its socket, so a device
// answers its peers one request at a time: a Device whose Apply takes a
// second holds up a second peer for that second (go-coap did the same per
// peer; peers of one device are rare).
//
// A device re-serves a retransmitted request older than its last answer
// instead of replaying a cached answer, as RFC 7252 section 4.5 allows for
// idempotent requests; every request of this protocol is one.
//
// The normative text is docs/spec/agent-coap.md.
package coap
