package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/schedule"
	"github.com/fleetvault/fleetvault/service"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// bench is the server's test bench (service.TestBench): twins are
// simulated devices (package devicesim, the fleet simulator's own device
// code) that connect to the installation's embedded broker with their own
// credentials, as any device does; settings are read back through the
// server's transports.
type bench struct{ s *Server }

var _ service.TestBench = bench{}

// twinOnline bounds how long a twin may take to connect.
const twinOnline = 30 * time.Second

// StartTwin runs one simulated device with tag, id and password.
func (b bench) StartTwin(ctx context.Context, id, password string, tag tagmatch.Tag) (func(), error) {
	if b.s.Broker == nil {
		return nil, errors.New("twins connect to the embedded MQTT broker, and this server uses an external one; test-restore into a device marked as a test bench instead (--into DEVICE)")
	}
	spec, err := devicesim.Parse("twin "+id, twinFleet(id, tag))
	if err != nil {
		return nil, fmt.Errorf("describe the twin: %w", err)
	}
	f, err := devicesim.New(spec, devicesim.Options{BrokerURL: b.s.brokerURL, Secret: func(string) string { return password }, Logger: b.s.log})
	if err != nil {
		return nil, fmt.Errorf("make the twin: %w", err)
	}
	if err := f.Start(ctx); err != nil {
		f.Close()
		return nil, fmt.Errorf("connect the twin to %s: %w", b.s.brokerURL, err)
	}
	wctx, cancel := context.WithTimeout(ctx, twinOnline)
	defer cancel()
	if err := f.WaitOnline(wctx); err != nil {
		f.Close()
		return nil, fmt.Errorf("the twin did not come online at %s: %w", b.s.brokerURL, err)
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil
}

// twinFleet is the fleet file (YAML; JSON is YAML) of one MQTT device with
// id and tag, in the tag's order, template braces escaped.
func twinFleet(id string, tag tagmatch.Tag) []byte {
	lit := func(s string) string {
		b, _ := json.Marshal(strings.NewReplacer("{", "{{", "}", "}}").Replace(s))
		return string(b)
	}
	var t strings.Builder
	for i, a := range tag {
		if i > 0 {
			t.WriteString(", ")
		}
		fmt.Fprintf(&t, "%s: %s", lit(a.Key), lit(a.Value))
	}
	return []byte(fmt.Sprintf(`{"name": "twin", "seed": 1,
 "types": [{"name": "twin", "transport": "mqtt", "tag": {%s}, "settings": {"factory": {"twin": true}}}],
 "groups": [{"name": "twin", "site": "twin", "devices": [{"type": "twin", "id": %s}]}]}`, t.String(), lit(id)))
}

// ReadSettings reads a device's settings through the server's transport
// for its identifier's scheme.
func (b bench) ReadSettings(ctx context.Context, device, identifier string) ([]byte, error) {
	id, err := grouprestore.DeviceIdentifier(device, identifier)
	if err != nil {
		return nil, err
	}
	var tr agent.Transport
	switch id.Scheme {
	case "", "mqtt", "mqtts":
		tr = b.s.MQTT
	case "coap", "coaps":
		tr = b.s.CoAP
	default:
		return nil, fmt.Errorf("device %s: no transport for %q identifiers", device, id.Scheme)
	}
	id.Method, id.Params, id.Location = agent.MethodRead, []string{agent.ParamSettings}, agent.LocSettings
	resp, err := tr.Do(ctx, id, &agent.Request{})
	if err != nil {
		return nil, err
	}
	if resp.Err != nil {
		return nil, resp.Err
	}
	return resp.Settings, nil
}

// Certification sweep defaults: hourly, and once at start.
const DefaultSweepEvery = time.Hour

// runCertificationSweep runs the service's certification sweep now and then
// every interval on clock, from one goroutine, until stop is closed.
func runCertificationSweep(svc *service.Service, clock schedule.Clock, every time.Duration, stop <-chan struct{}, done chan<- struct{}, gauge *prometheus.GaugeVec, log *slog.Logger) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	for {
		rep, err := svc.CertificationSweep(ctx, clock.Now())
		switch {
		case err == nil:
			for state, n := range rep.Current {
				gauge.WithLabelValues(state).Set(float64(n))
			}
		case ctx.Err() == nil:
			log.Error("certification sweep failed; retrying at the next one", "err", err)
		}
		select {
		case <-stop:
			return
		case <-clock.After(every):
		}
	}
}

// startCertificationSweep starts the sweep loop and stops it on Close.
func (s *Server) startCertificationSweep(clock schedule.Clock, every time.Duration) {
	if every <= 0 {
		every = DefaultSweepEvery
	}
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fleetvault_backups_certification",
		Help: "Current backups (the newest of each device) by certification state, as of the last certification sweep (hourly).",
	}, []string{"state"})
	s.api.metrics.registry.MustRegister(gauge)
	stop, done := make(chan struct{}), make(chan struct{})
	go runCertificationSweep(s.Service, clock, every, stop, done, gauge, s.log)
	s.closers = append(s.closers, func() error {
		close(stop)
		<-done
		return nil
	})
}
