package devicesim

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestDeviceListRoundTrip(t *testing.T) {
	s := mustLoad(t, "testdata/small.yaml")
	f, err := New(s, Options{BrokerURL: "mqtt://127.0.0.1:1883"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if err := WriteDeviceList(&buf, s.Name, f.Seed(), f.Devices()); err != nil {
		t.Fatal(err)
	}
	recs, err := ParseDeviceList("devices.yaml", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if want := DeviceList(f.Devices()); !reflect.DeepEqual(recs, want) {
		t.Fatalf("round trip differs:\n%+v\n%+v", recs[0], want[0])
	}
	if recs[0].Identifier != "mqtt://model-north-climate" {
		t.Errorf("identifier %q", recs[0].Identifier)
	}
}

func TestParseDeviceListErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"not a list", "id: x", "expected a list"},
		{"unknown key", "- {id: a, pasword: x}", "pasword"},
		{"bad id", "- {id: a/b, password: x, identifier: mqtt://a, transport: mqtt}", "entry 1: id"},
		{"duplicate", "- {id: a, password: x, identifier: mqtt://a, transport: mqtt}\n- {id: a, password: x, identifier: mqtt://a, transport: mqtt}", "also entry 1"},
		{"bad identifier", "- {id: a, password: x, identifier: http://a, transport: mqtt}", "identifier"},
		{"bad port", "- {id: a, identifier: coap://127.0.0.1:99999, transport: coap}", "port"},
		{"no password", "- {id: a, identifier: mqtt://a, transport: mqtt}", "password"},
		{"bad transport", "- {id: a, password: x, identifier: mqtt://a, transport: zigbee}", "transport"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDeviceList("devices.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "devices.yaml") {
				t.Fatalf("error %v, want one naming devices.yaml and %q", err, c.want)
			}
		})
	}
}

func FuzzParseDeviceList(f *testing.F) {
	f.Add([]byte("- {id: a, password: x, identifier: mqtt://a, transport: mqtt, tag: [{key: zone, value: North}]}"))
	f.Add([]byte("- {id: b, identifier: \"coap://[::1]:5683\", transport: coap}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseDeviceList("fuzz.yaml", data)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		infos := make([]DeviceInfo, 0, len(recs))
		for _, r := range recs {
			infos = append(infos, DeviceInfo{ID: r.ID, Password: r.Password, Tag: r.Tag, Transport: r.Transport})
		}
		if err := WriteDeviceList(&buf, "fuzz", 0, infos); err != nil {
			t.Fatal(err)
		}
	})
}
