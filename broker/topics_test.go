package broker

import "testing"

func TestACLRules(t *testing.T) {
	for _, tc := range []struct {
		name        string
		topic       string
		write       bool
		device, srv bool // allowed for device "d1", for a server
	}{
		{"own request, read", "fleetvault/v1/d1/req", false, true, false},
		{"own request, write", "fleetvault/v1/d1/req", true, false, true},
		{"own response, write", "fleetvault/v1/d1/res", true, true, false},
		{"own response, read", "fleetvault/v1/d1/res", false, false, true},
		{"other request, read", "fleetvault/v1/d2/req", false, false, false},
		{"other request, write", "fleetvault/v1/d2/req", true, false, true},
		{"other response, write", "fleetvault/v1/d2/res", true, false, false},
		{"all responses, read", "fleetvault/v1/+/res", false, false, true},
		{"shared responses, read", "$share/g1/fleetvault/v1/+/res", false, false, true},
		{"shared, bad group", "$share/a+b/fleetvault/v1/+/res", false, false, false},
		{"all requests, write", "fleetvault/v1/+/req", true, false, false},
		{"multi-level", "fleetvault/v1/#", false, false, false},
		{"nested request", "fleetvault/v1/d1/req/x", false, false, false},
		{"empty device", "fleetvault/v1//req", true, false, false},
		{"other version", "fleetvault/v2/d1/req", false, false, false},
		{"everything", "#", false, false, false},
		{"prefix trick", "fleetvault/v1/d1/../d2/req", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deviceMay("d1", tc.topic, tc.write); got != tc.device {
				t.Errorf("device: %v, want %v", got, tc.device)
			}
			if got := serverMay(tc.topic, tc.write); got != tc.srv {
				t.Errorf("server: %v, want %v", got, tc.srv)
			}
		})
	}
}

func TestDeviceOf(t *testing.T) {
	for _, tc := range []struct {
		topic, dev string
		ok         bool
	}{
		{"fleetvault/v1/home1-thermo/req", "home1-thermo", true},
		{"fleetvault/v1/a.b_c/res", "a.b_c", true},
		{"fleetvault/v1/+/res", "", false},
		{"fleetvault/v1/a/b/res", "", false},
		{"other/v1/a/res", "", false},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			d, ok := DeviceOf(tc.topic)
			if d != tc.dev || ok != tc.ok {
				t.Errorf("DeviceOf = %q, %v", d, ok)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	long := make([]byte, MaxNameLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"home1-thermo", true}, {"A.b_C-9", true}, {"", false}, {"a/b", false}, {"a+b", false},
		{"a#", false}, {"a b", false}, {"ä", false}, {"a:b", false}, {string(long), false}, {string(long[1:]), true},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v", tc.name, got)
		}
	}
}
