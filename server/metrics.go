package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/identifiers"
)

// metrics holds the server's Prometheus registry and its own instruments.
// Each Server has its own registry, so two servers in one process (tests)
// do not collide.
type metrics struct {
	registry *prometheus.Registry
	latency  *prometheus.HistogramVec // transport, method, location, result
	outcomes *prometheus.CounterVec   // kind, state
	jobsSeen *prometheus.CounterVec   // kind: jobs started or resumed by this process
	drifted  *prometheus.GaugeVec     // group: devices drifted at the group's last drift job
	rpo      *rpoMetrics              // schedule: RPO states and backup age (schedules.go)

	mu      sync.Mutex
	tracked map[string]func() // job id -> stop watching
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fleetvault_transport_request_seconds",
			Help: "Time from sending a request to a device to its answer (or error), by transport, method (READ probe, WRITE), location and result.",
			// From loopback round trips (~100µs) to the default 5 s request timeout.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"transport", "method", "location", "result"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetvault_device_outcomes_total",
			Help: "Devices that reached a final state in a job, by job kind and state.",
		}, []string{"kind", "state"}),
		jobsSeen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetvault_jobs_started_total",
			Help: "Jobs started or resumed by this server process, by kind.",
		}, []string{"kind"}),
		drifted: newDriftGauge(),
		rpo:     newRPOMetrics(),
		tracked: map[string]func(){},
	}
	m.registry.MustRegister(m.latency, m.outcomes, m.jobsSeen, m.drifted, m.rpo.devices, m.rpo.age,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrumented wraps a Transport and observes every exchange's latency.
type instrumented struct {
	next agent.Transport
	name string
	obs  *prometheus.HistogramVec
}

var _ agent.Transport = (*instrumented)(nil)

// instrumentedPresence keeps the PresenceNotifier of a transport that has
// one (MQTT), since the engine finds it by type assertion.
type instrumentedPresence struct {
	*instrumented
	pn agent.PresenceNotifier
}

var _ agent.PresenceNotifier = (*instrumentedPresence)(nil)

func (p *instrumentedPresence) OnOnline(fn func(device string)) { p.pn.OnOnline(fn) }

// instrument wraps a transport named name ("mqtt", "coap") with a timing
// decorator.
func (m *metrics) instrument(name string, t agent.Transport) agent.Transport {
	in := &instrumented{next: t, name: name, obs: m.latency}
	if pn, ok := t.(agent.PresenceNotifier); ok {
		return &instrumentedPresence{instrumented: in, pn: pn}
	}
	return in
}

// Do forwards to the wrapped transport and records how long it took.
func (t *instrumented) Do(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	start := time.Now()
	res, err := t.next.Do(ctx, target, req)
	t.obs.WithLabelValues(t.name, target.Method, target.Location, resultOf(res, err)).Observe(time.Since(start).Seconds())
	return res, err
}

// Close closes the wrapped transport.
func (t *instrumented) Close() error { return t.next.Close() }

// resultOf classifies an exchange for the result label.
func resultOf(res *agent.Response, err error) string {
	switch {
	case err == nil && res != nil && res.Err != nil:
		return "refused"
	case err == nil:
		return "ok"
	case errors.Is(err, agent.ErrTimeout):
		return "timeout"
	case errors.Is(err, agent.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, agent.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	}
	return "error"
}

// instrumentTransports wraps each distinct transport once, keeping the
// scheme keys the engine looks them up by. A transport is named by its
// shortest non-empty scheme ("mqtt" for "", "mqtt" and "mqtts").
func (m *metrics) instrumentTransports(ts map[string]agent.Transport) map[string]agent.Transport {
	names := map[agent.Transport]string{}
	for scheme, t := range ts {
		if n, ok := names[t]; scheme != "" && (!ok || n == "" || len(scheme) < len(n) || (len(scheme) == len(n) && scheme < n)) {
			names[t] = scheme
		} else if !ok {
			names[t] = ""
		}
	}
	wrapped := map[agent.Transport]agent.Transport{}
	out := make(map[string]agent.Transport, len(ts))
	for scheme, t := range ts {
		w, ok := wrapped[t]
		if !ok {
			w = m.instrument(names[t], t)
			wrapped[t] = w
		}
		out[scheme] = w
	}
	return out
}

// track counts a job's device outcomes as they happen: it watches the job and
// adds each final state's growth to the outcome counter. A job is tracked once.
func (m *metrics) track(j *grouprestore.Job) {
	id := j.ID()
	m.mu.Lock()
	if _, ok := m.tracked[id]; ok || m.tracked == nil {
		m.mu.Unlock()
		return
	}
	ch, stop := j.Watch(250 * time.Millisecond)
	m.tracked[id] = stop
	m.mu.Unlock()
	kind := string(j.Spec().Kind)
	m.jobsSeen.WithLabelValues(kind).Inc()
	go func() {
		seen := map[grouprestore.State]int{}
		var last grouprestore.Progress
		for p := range ch {
			m.addOutcomes(kind, seen, p.Counts)
			last = p
		}
		m.setDrifted(j.Spec(), last)
	}()
}

// addOutcomes adds to the counter what counts have over seen, and updates seen.
func (m *metrics) addOutcomes(kind string, seen, counts map[grouprestore.State]int) {
	for st, n := range counts {
		if !st.Final() || n <= seen[st] {
			continue
		}
		m.outcomes.WithLabelValues(kind, string(st)).Add(float64(n - seen[st]))
		seen[st] = n
	}
}

// stopTracking stops every watcher; called when the server closes.
func (m *metrics) stopTracking() {
	m.mu.Lock()
	stops := m.tracked
	m.tracked = nil
	m.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

// serverCollector reports what is read at scrape time: jobs in the journal by
// kind and state, and the MQTT transport's counters.
type serverCollector struct{ s *Server }

var _ prometheus.Collector = (*serverCollector)(nil)

var (
	descJobs = prometheus.NewDesc("fleetvault_jobs",
		"Jobs in the journal, by kind and state.", []string{"kind", "state"}, nil)
	descMQTTSent = prometheus.NewDesc("fleetvault_mqtt_requests_sent_total",
		"Requests the server's MQTT transport published.", nil, nil)
	descMQTTReceived = prometheus.NewDesc("fleetvault_mqtt_responses_received_total",
		"Messages the server's MQTT transport received on response topics.", nil, nil)
	descMQTTAnswered = prometheus.NewDesc("fleetvault_mqtt_responses_answered_total",
		"Responses delivered to a waiting request.", nil, nil)
	descMQTTPresence = prometheus.NewDesc("fleetvault_mqtt_presence_total",
		"Presence announcements (device connects) seen by the MQTT transport.", nil, nil)
	descMQTTDropped = prometheus.NewDesc("fleetvault_mqtt_dropped_total",
		"Messages the MQTT transport dropped, by reason.", []string{"reason"}, nil)
	descTagMismatches = prometheus.NewDesc("fleetvault_tag_mismatches_total",
		"Devices whose live tag contradicted their registered tag (each ended tag-mismatch, nothing written): alert on any.", nil, nil)
	descStorageErrors = prometheus.NewDesc("fleetvault_storage_write_errors_total",
		"Writes to the journal or the catalog that failed for want of space or a failing disk (the job paused and retried).", nil, nil)
	descStoragePaused = prometheus.NewDesc("fleetvault_jobs_storage_paused",
		"Jobs paused now because their writes fail (disk full or failing).", nil, nil)
	descHTTPAuthFailures = prometheus.NewDesc("fleetvault_http_auth_failures_total",
		"API requests answered 401 (no, wrong, revoked or disabled credentials).", nil, nil)
	descHTTPThrottled = prometheus.NewDesc("fleetvault_http_throttled_total",
		"API requests answered 429 because their address failed to authenticate too often.", nil, nil)
	descNotifications = prometheus.NewDesc("fleetvault_notifications_total",
		"Notifications since the server started, by result: sent, undeliverable (kept for fleetvault notify undeliverable), dropped (a queue was full).", []string{"result"}, nil)
	descNotifyRetries = prometheus.NewDesc("fleetvault_notification_retries_total",
		"Notification deliveries tried again after a failure.", nil, nil)
)

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descMQTTSent, descMQTTReceived, descMQTTAnswered, descMQTTPresence, descMQTTDropped,
		descTagMismatches, descStorageErrors, descStoragePaused, descHTTPAuthFailures, descHTTPThrottled, descNotifications, descNotifyRetries} {
		ch <- d
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.Notifications != nil {
		st := c.s.Notifications.Stats()
		for result, n := range map[string]uint64{"sent": st.Sent, "undeliverable": st.Undeliverable, "dropped": st.Stats.Dropped + st.Dropped} {
			ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(n), result)
		}
		ch <- prometheus.MustNewConstMetric(descNotifyRetries, prometheus.CounterValue, float64(st.Retries))
	}
	if c.s.Engine != nil {
		if recs, err := c.s.Engine.Jobs(); err == nil {
			type key struct{ kind, state string }
			n := map[key]int{}
			for _, r := range recs {
				n[key{string(r.Spec.Kind), string(r.State)}]++
			}
			for k, v := range n {
				ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(v), k.kind, k.state)
			}
		} else {
			c.s.log.Warn("metrics: read the job journal", "err", err)
		}
		st := c.s.Engine.Stats()
		ch <- prometheus.MustNewConstMetric(descTagMismatches, prometheus.CounterValue, float64(st.TagMismatches))
		ch <- prometheus.MustNewConstMetric(descStorageErrors, prometheus.CounterValue, float64(st.StorageErrors))
		ch <- prometheus.MustNewConstMetric(descStoragePaused, prometheus.GaugeValue, float64(st.StoragePaused))
	}
	if c.s.api != nil && c.s.api.throttle != nil {
		st := c.s.api.throttle.Stats()
		ch <- prometheus.MustNewConstMetric(descHTTPAuthFailures, prometheus.CounterValue, float64(st.Failed))
		ch <- prometheus.MustNewConstMetric(descHTTPThrottled, prometheus.CounterValue, float64(st.Refused))
	}
	if c.s.MQTT != nil {
		st := c.s.mqttStats()
		ch <- prometheus.MustNewConstMetric(descMQTTSent, prometheus.CounterValue, float64(st.Sent))
		ch <- prometheus.MustNewConstMetric(descMQTTReceived, prometheus.CounterValue, float64(st.Received))
		ch <- prometheus.MustNewConstMetric(descMQTTAnswered, prometheus.CounterValue, float64(st.Answered))
		ch <- prometheus.MustNewConstMetric(descMQTTPresence, prometheus.CounterValue, float64(st.Presence))
		for reason, v := range st.Dropped {
			ch <- prometheus.MustNewConstMetric(descMQTTDropped, prometheus.CounterValue, float64(v), reason)
		}
	}
}
