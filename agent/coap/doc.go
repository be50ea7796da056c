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
//	coap-client -m get 'coap://127.0.0.1:5683/fleetvault/v1/tag?v=1&id=x&ident=coap://127.0.0.1:5683?READ:SETTINGS?TAG'
//
// # Device side
//
// Listen (or NewServer on a socket already bound) serves one agent.Handler on
// one UDP port. A Group shares the housekeeping of many servers, so a
// simulator can run tens of thousands of devices in one process: each device
// costs its socket, one goroutine blocked reading it and a small read buffer.
//
// # Server side
//
// Transport implements agent.Transport. It sends every request from one UDP
// socket and keeps per-device exchange state only for devices in use (bounded
// by TransportOptions.MaxPeers, forgotten after IdleTimeout).
//
// # Caveats
//
// An unconnected UDP socket does not learn about ICMP port-unreachable
// messages, so a device that is down is reported as agent.ErrTimeout when its
// context ends; agent.ErrUnreachable is returned when the address does not
// resolve or the network refuses the send.
//
// The normative text is docs/spec/agent-coap.md.
package coap
