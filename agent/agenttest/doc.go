// Package agenttest is the conformance suite every agent.Transport passes, and
// the in-memory device it uses.
//
// # Basics
//
// A transport's tests call Run with a function that builds a fresh Env for
// each case: the server-side transport, and a way to start devices it can
// reach over that transport.
//
//	func TestConformance(t *testing.T) {
//		agenttest.Run(t, func(t *testing.T) agenttest.Env { return newMyEnv(t) })
//	}
//
// The cases cover every method (read tag, read settings, write), the applied
// hash, idempotent repeats, conflicts, refusals, large settings (over 1 KiB
// and about 100 KiB, which CoAP carries blockwise), unknown devices, many
// concurrent calls correlated right, cancellation, closing, and the version
// and capabilities every answer carries.
//
// # Caveats
//
// Cases run one after another, each with its own Env. Long cases are skipped
// under -short.
package agenttest
