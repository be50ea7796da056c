package broker_test

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

func TestCollector(t *testing.T) {
	b := brokertest.StartOptions(t, broker.Options{
		Credentials:      brokertest.Credentials(t, map[string]string{"home1-thermo": "pw-thermo", "home2-lock": "pw-lock"}, nil),
		LockoutThreshold: 1, ConnectTimeout: 200 * time.Millisecond,
	})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(b.Collector()); err != nil {
		t.Fatal(err)
	}
	url := brokertest.URL(b)
	mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
	if _, err := connect(t, url, "home2-lock", "home2-lock", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := connect(t, url, "home2-lock", "home2-lock", "pw-lock"); err == nil {
		t.Fatal("locked-out device accepted")
	}
	idle, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	poll(t, "one connection, one timeout", func() bool { s := b.Stats(); return s.Connected == 1 && s.PreAuthTimeouts == 1 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			} else {
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"fleetvault_broker_connected_clients":                       1,
		"fleetvault_broker_auth_failures_total{reason=password}":    1,
		"fleetvault_broker_auth_failures_total{reason=unknown}":     0,
		"fleetvault_broker_acl_denials_total{action=publish}":       0,
		"fleetvault_broker_dropped_messages_total":                  0,
		"fleetvault_broker_auth_failures_total{reason=locked-out}":  1,
		"fleetvault_broker_lockouts_total{scope=client-id}":         1,
		"fleetvault_broker_lockouts_total{scope=address}":           0,
		"fleetvault_broker_preauth_closed_total{reason=timeout}":    1,
		"fleetvault_broker_preauth_closed_total{reason=rate-limit}": 0,
		"fleetvault_broker_unauthenticated_connections":             0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}
