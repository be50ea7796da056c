package grouprestore

import (
	"errors"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
)

// TestDeviceIdentifierShard: a device's broker shard survives from the
// resource database to every request built for it, and a malformed one is
// refused where the identifier is read.
func TestDeviceIdentifierShard(t *testing.T) {
	for _, tc := range []struct {
		name, stored string
		broker       string // of each request; "" for the default broker
		err          error
	}{
		{"default", "", "", nil},
		{"base address", "mqtt://d1", "", nil},
		{"shard", "mqtt://d1?READ:SETTINGS,broker:s2?TAG", "s2", nil},
		{"malformed shard", "mqtt://d1?READ:SETTINGS,broker:a.b?TAG", "", identifiers.ErrBrokerParam},
		{"two shards", "mqtt://d1?READ:SETTINGS,broker:a,broker:b?TAG", "", identifiers.ErrBrokerParam},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := DeviceIdentifier("d1", tc.stored)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("DeviceIdentifier = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []struct{ method, loc string }{{agent.MethodRead, agent.LocWrite}, {agent.MethodWrite, agent.LocWrite}, {agent.MethodRead, agent.LocTag}} {
				req := settingsID(id, m.method, m.loc)
				if got, err := req.Broker(); err != nil || got != tc.broker || req.Param(0) != agent.ParamSettings {
					t.Errorf("%s: broker %q (%v), first param %q; want %q after SETTINGS", req, got, err, req.Param(0), tc.broker)
				}
			}
		})
	}
}
