package devicesim

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/agent/coap"
)

// TestDefaultCoAPKeyVectors: the simulator's derived keys are those of
// docs/spec/vectors/coap-security.json, so a device made elsewhere from the
// same seed gets the same key.
func TestDefaultCoAPKeyVectors(t *testing.T) {
	b, err := os.ReadFile("../docs/spec/vectors/coap-security.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		SimulatorKeys []struct {
			Seed   uint64 `json:"seed"`
			Device string `json:"device"`
			Key    string `json:"key"`
		} `json:"simulator_keys"`
	}
	if err := json.Unmarshal(b, &v); err != nil || len(v.SimulatorKeys) == 0 {
		t.Fatalf("vectors: %v (%d simulator keys)", err, len(v.SimulatorKeys))
	}
	for _, k := range v.SimulatorKeys {
		t.Run(k.Device, func(t *testing.T) {
			if got := coap.FormatKey(DefaultCoAPKey(k.Seed)(k.Device)); got != k.Key {
				t.Fatalf("DefaultCoAPKey(%d)(%s) = %s, want %s", k.Seed, k.Device, got, k.Key)
			}
		})
	}
}

// TestDeviceListCoAPKeys: a coaps:// device's key travels in the device list
// and back; a list without it, or with a bad one, is refused with the entry.
func TestDeviceListCoAPKeys(t *testing.T) {
	for _, tc := range []struct {
		name, list, wantErr string
	}{
		{"coaps with a key", "- {id: d1, identifier: 'coaps://127.0.0.1:5684', coap_key: 83699343b123b3ea401968589f2a2066, transport: coap}\n", ""},
		{"coap without a key", "- {id: d1, identifier: 'coap://127.0.0.1:5683', transport: coap}\n", ""},
		{"coaps without a key", "- {id: d1, identifier: 'coaps://127.0.0.1:5684', transport: coap}\n", "entry 1 (d1): coaps://127.0.0.1:5684 needs a CoAP pre-shared key"},
		{"short key", "- {id: d1, identifier: 'coaps://127.0.0.1:5684', coap_key: 0011, transport: coap}\n", "entry 1 (d1): coap_key: CoAP pre-shared key of 2 bytes"},
		{"key on plain coap", "- {id: d1, identifier: 'coap://127.0.0.1:5683', coap_key: 83699343b123b3ea401968589f2a2066, transport: coap}\n", "a coap_key is for coaps:// devices"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ParseDeviceList("devices.yaml", []byte(tc.list))
			if tc.wantErr == "" {
				if err != nil || len(recs) != 1 {
					t.Fatalf("%v, %d records", err, len(recs))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
