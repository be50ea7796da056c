package server

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/identifiers"
)

func TestSuggest(t *testing.T) {
	names := []string{"new-homes", "model-house", "reference-iot", "Backup Group of Devices"}
	tests := []struct{ name, in, want string }{
		{"typo", "new-hmes", `; did you mean "new-homes"?`},
		{"swap", "nwe-homes", `; did you mean "new-homes"?`},
		{"case", "backup group of devices", `; did you mean "Backup Group of Devices"?`},
		{"near long name", "Backup Group of Device", `; did you mean "Backup Group of Devices"?`},
		{"far", "garage", ""},
		{"empty list", "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := names
			if tt.name == "empty list" {
				list = nil
			}
			if got := Suggest(tt.in, list); got != tt.want {
				t.Fatalf("Suggest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"new-hmes", "new-homes", 1}, {"zoné", "zone", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if d := editDistance(tt.a, tt.b); d != tt.d || editDistance(tt.b, tt.a) != tt.d {
				t.Fatalf("distance %d, want %d", d, tt.d)
			}
		})
	}
}

// fakeTransport answers from a function; it can announce presence.
type fakeTransport struct {
	do     func(identifiers.ID) (*agent.Response, error)
	online func(string)
}

func (f *fakeTransport) Do(_ context.Context, target identifiers.ID, _ *agent.Request) (*agent.Response, error) {
	return f.do(target)
}
func (f *fakeTransport) Close() error             { return nil }
func (f *fakeTransport) OnOnline(fn func(string)) { f.online = fn }
func (f *plainTransport) Do(ctx context.Context, t identifiers.ID, r *agent.Request) (*agent.Response, error) {
	return f.fakeTransport.Do(ctx, t, r)
}
func (f *plainTransport) Close() error { return nil }

// plainTransport has no presence.
type plainTransport struct{ fakeTransport *fakeTransport }

var (
	_ agent.Transport        = (*fakeTransport)(nil)
	_ agent.PresenceNotifier = (*fakeTransport)(nil)
	_ agent.Transport        = (*plainTransport)(nil)
)

func TestInstrumentedTransport(t *testing.T) {
	m := newMetrics()
	fake := &fakeTransport{do: func(id identifiers.ID) (*agent.Response, error) {
		switch id.Address {
		case "refuses":
			return &agent.Response{Err: &agent.Error{Code: agent.CodeRejected}}, nil
		case "slow":
			return nil, fmt.Errorf("probe: %w", agent.ErrTimeout)
		case "gone":
			return nil, agent.ErrUnreachable
		case "odd":
			return nil, errors.New("malformed")
		}
		return &agent.Response{}, nil
	}}
	plain := &plainTransport{fakeTransport: fake}
	ts := m.instrumentTransports(map[string]agent.Transport{"": fake, "mqtt": fake, "mqtts": fake, "coap": plain, "coaps": plain})
	if ts[""] != ts["mqtt"] || ts["mqtt"] != ts["mqtts"] || ts["coap"] != ts["coaps"] {
		t.Fatal("one transport wrapped more than once")
	}
	pn, ok := ts["mqtt"].(agent.PresenceNotifier)
	if !ok {
		t.Fatal("the MQTT wrapper lost PresenceNotifier")
	}
	if _, ok := ts["coap"].(agent.PresenceNotifier); ok {
		t.Fatal("the CoAP wrapper gained a PresenceNotifier")
	}
	called := ""
	pn.OnOnline(func(d string) { called = d })
	fake.online("home1")
	if called != "home1" {
		t.Fatal("presence not forwarded")
	}
	ctx := context.Background()
	for _, addr := range []string{"ok", "ok", "refuses", "slow", "gone", "odd"} {
		_, _ = ts["mqtt"].Do(ctx, identifiers.ReadTag("mqtt", addr, 0), &agent.Request{})
	}
	_, _ = ts["coap"].Do(ctx, identifiers.WriteSettings("coap", "ok", 5683), &agent.Request{})
	tests := []struct {
		labels []string
		n      int
	}{
		{[]string{"mqtt", "READ", "TAG", "ok"}, 2},
		{[]string{"mqtt", "READ", "TAG", "refused"}, 1},
		{[]string{"mqtt", "READ", "TAG", "timeout"}, 1},
		{[]string{"mqtt", "READ", "TAG", "unreachable"}, 1},
		{[]string{"mqtt", "READ", "TAG", "error"}, 1},
		{[]string{"coap", "WRITE", "TAG+SETTINGS", "ok"}, 1},
	}
	text := metricsText(t, m)
	for _, tt := range tests {
		t.Run(strings.Join(tt.labels, "/"), func(t *testing.T) {
			want := fmt.Sprintf("fleetvault_transport_request_seconds_count{location=%q,method=%q,result=%q,transport=%q} %d", tt.labels[2], tt.labels[1], tt.labels[3], tt.labels[0], tt.n)
			if !strings.Contains(text, want) {
				t.Fatalf("no %s in\n%s", want, grepLines(text, "fleetvault_transport_request_seconds_count"))
			}
		})
	}
	if n := strings.Count(text, "fleetvault_transport_request_seconds_count{"); n != len(tests) {
		t.Fatalf("%d series, want %d", n, len(tests))
	}
}

// metricsText renders a registry in the Prometheus text format.
func metricsText(t *testing.T, m *metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestOutcomeCounter(t *testing.T) {
	m := newMetrics()
	seen := map[grouprestore.State]int{}
	m.addOutcomes("restore", seen, map[grouprestore.State]int{grouprestore.Restored: 3, grouprestore.Writing: 2})
	m.addOutcomes("restore", seen, map[grouprestore.State]int{grouprestore.Restored: 5, grouprestore.NoMatch: 1})
	m.addOutcomes("restore", seen, map[grouprestore.State]int{grouprestore.Restored: 5, grouprestore.NoMatch: 1})
	text := grepLines(metricsText(t, m), "fleetvault_device_outcomes_total{")
	want := "fleetvault_device_outcomes_total{kind=\"restore\",state=\"no-match\"} 1\nfleetvault_device_outcomes_total{kind=\"restore\",state=\"restored\"} 5"
	if text != want {
		t.Fatalf("got\n%s\nwant\n%s", text, want)
	}
}

func TestReadEvents(t *testing.T) {
	stream := ": keep-alive\n\nevent: progress\nid: 0\ndata: {\"a\":1}\n\ndata: x\ndata: y\n\nevent: end\ndata: {}\n\n"
	var got []string
	err := ReadEvents(strings.NewReader(stream), func(ev Event) error {
		got = append(got, ev.Name+"="+string(ev.Data))
		return nil
	})
	if err != nil || strings.Join(got, "|") != `progress={"a":1}|message=x`+"\n"+`y|end={}` {
		t.Fatalf("%q %v", got, err)
	}
	stop := errors.New("stop")
	if err := ReadEvents(strings.NewReader(stream), func(Event) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add("event: progress\ndata: {}\n\nevent: end\ndata: {}\n\n")
	f.Add(":\n\n\n\ndata\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = ReadEvents(strings.NewReader(s), func(ev Event) error {
			if ev.Name == "" {
				t.Fatal("event without a name")
			}
			return nil
		})
	})
}

func FuzzParseDevicesCSV(f *testing.F) {
	f.Add([]byte("id,password,identifier,group,tag\nhome1,s,mqtt://home1,g,zone=North\n"))
	f.Add([]byte("id\n\"a\nb\"\n"))
	f.Add([]byte("tag,id\n\"zone=\"\"x\"\"\",a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nds, err := ParseDevicesCSV(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "CSV") {
				t.Fatalf("error without its format: %v", err)
			}
			return
		}
		for _, nd := range nds {
			if nd.ID == "" {
				t.Fatal("a device without an id was accepted")
			}
		}
	})
}

func FuzzParseDevicesYAML(f *testing.F) {
	f.Add([]byte("- id: a\n  tag: zone=North\n"))
	f.Add([]byte("devices:\n  - id: b\n    tag: {zone: South}\n"))
	f.Add([]byte("- id: c\n  tag: [{key: zone, value: x}]\n"))
	f.Add([]byte("- &a {id: x}\n- *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nds, err := ParseDevicesYAML(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "YAML") {
				t.Fatalf("error without its format: %v", err)
			}
			return
		}
		for _, nd := range nds {
			if nd.ID == "" {
				t.Fatal("a device without an id was accepted")
			}
		}
	})
}

func ExampleParseDevicesCSV() {
	devs, err := ParseDevicesCSV([]byte(`id,password,identifier,group,tag
home1-climate,,mqtt://home1-climate,new-homes,manufacturer=Acme Corp.; model=xyz; zone=South
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range devs {
		zone, _ := d.Tag.Get("zone")
		fmt.Println(d.ID, d.Group, zone)
	}
	// Output: home1-climate new-homes South
}
