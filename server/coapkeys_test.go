package server

import (
	"context"
	"errors"
	"github.com/fleetvault/fleetvault/api"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/catalogtest"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

const testCoAPKey = "666c6565747661756c742d746573742d6b65792d30303031"

// TestImportCoAPKeys: CSV and YAML imports carry a coaps:// device's key
// into the resource database, where the CoAP transport's lookup finds it;
// a missing or bad key is refused with the device named.
func TestImportCoAPKeys(t *testing.T) {
	for _, tc := range []struct {
		name    string
		parse   func([]byte) ([]apiclient.NewDevice, error)
		doc     string
		wantErr string
	}{
		{"csv", api.ParseDevicesCSV, "id,identifier,coap_key\nd1,coaps://127.0.0.1:5684," + testCoAPKey + "\n", ""},
		{"yaml", api.ParseDevicesYAML, "- {id: d1, identifier: 'coaps://127.0.0.1:5684', coap_key: " + testCoAPKey + "}\n", ""},
		{"yaml without a key", api.ParseDevicesYAML, "- {id: d1, identifier: 'coaps://127.0.0.1:5684'}\n", "device d1: coaps://127.0.0.1:5684 needs a CoAP pre-shared key"},
		{"csv with a short key", api.ParseDevicesCSV, "id,identifier,coap_key\nd1,coaps://127.0.0.1:5684,00112233\n", "device d1: coap_key: CoAP pre-shared key of 4 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nds, err := tc.parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			devs, _, err := service.CatalogDevices(nds)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := catalogtest.New(t)
			if err := c.PutDevices(context.Background(), devs); err != nil {
				t.Fatal(err)
			}
			key, err := CoAPKeys(c)(context.Background(), "d1")
			if err != nil || coap.FormatKey(key) != testCoAPKey {
				t.Fatalf("key %x, %v; want %s", key, err, testCoAPKey)
			}
			if _, err := CoAPKeys(c)(context.Background(), "nobody"); !errors.Is(err, coap.ErrNoKey) {
				t.Fatalf("unknown device: %v, want ErrNoKey", err)
			}
		})
	}
}

// thermo is a device for the server's CoAP tests.
type thermo struct{}

func (thermo) Tag(context.Context) (tagmatch.Tag, error) {
	return tagmatch.Tag{{Key: tagmatch.KeyManufacturer, Value: "Acme Corp."}}, nil
}
func (thermo) Settings(context.Context) (agent.Settings, error) { return agent.Settings{"a": 1}, nil }
func (thermo) Apply(context.Context, agent.Settings) error      { return nil }

// TestServerCoAPSecurity: the server reaches a coaps:// device with the key
// from its resource database, and refuses plain CoAP unless InsecureCoAP.
func TestServerCoAPSecurity(t *testing.T) {
	key, _ := coap.ParseKey(testCoAPKey)
	serveDevice := func(t *testing.T, secure bool) identifiers.ID {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		addr := conn.LocalAddr().(*net.UDPAddr)
		h := agent.NewHandler("d1", thermo{}, agent.HandlerOptions{Addresses: []string{addr.String()}})
		srv := coap.NewServer(conn, h, coap.ServerOptions{})
		scheme := "coap"
		if secure {
			if srv, err = coap.NewSecureServer(conn, h, key, coap.ServerOptions{}); err != nil {
				t.Fatal(err)
			}
			scheme = "coaps"
		}
		go func() { _ = srv.Serve(t.Context()) }()
		t.Cleanup(func() { _ = srv.Close() })
		return identifiers.Settings(scheme, "127.0.0.1", addr.Port, agent.LocTag)
	}
	for _, tc := range []struct {
		name     string
		insecure bool
		secure   bool
		wantErr  error
	}{
		{"coaps with the key from the resource database", false, true, nil},
		{"plain coap refused", false, false, coap.ErrInsecure},
		{"plain coap with --insecure-coap", true, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := Start(context.Background(), Options{MBR: mbr, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0", InsecureCoAP: tc.insecure})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			target := serveDevice(t, tc.secure)
			if err := s.Catalog.PutDevices(context.Background(), []catalog.Device{{ID: "d1", Identifier: target.String(), CoAPPSKSecret: key}}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(agent.WithDevice(context.Background(), "d1"), 10*time.Second)
			defer cancel()
			resp, err := s.CoAP.Do(ctx, target, &agent.Request{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || resp.Err != nil || resp.Device != "d1" {
				t.Fatalf("probe: %v %+v", err, resp)
			}
		})
	}
}
