// Package server assembles a Fleetvault installation into one running
// process: the catalog and resource database named by a master backup record,
// the MQTT broker (embedded, or an external one such as Mosquitto or EMQX),
// the MQTT and CoAP transports, the group-restore engine, the service that
// authorizes every operation (package service), and the HTTP server of the
// API (package api) with its metrics.
//
// `fleetvault serve` and `fleetvault demo` are thin wrappers around Start.
// Jobs that were running when the last process stopped are resumed on Start.
// The *http.Server is made in one place, startHTTP.
//
// The server is also the service's test bench (service.TestBench, in
// certify.go): a test restore's twin is a devicesim device that connects to
// the embedded broker with credentials registered for the test, so the
// restore takes the real protocol path; and it runs the certification
// sweep (service.CertificationSweep) hourly and at start from one goroutine
// on Options.Clock, stopped by Close.
//
// The scheduler (schedules.go) is one schedule.Loop over the resource
// database's schedules, started last and stopped first: each run backs up,
// waits for its job, applies the backup group's retention and records the
// run (service.RunScheduled); the same loop checks every device's RPO every
// Options.RPOInterval and feeds the fleetvault_rpo_devices and
// fleetvault_backup_age_seconds gauges. Options.ScheduleClock drives it (and
// stamps backups), so tests run days of schedules without waiting.
package server
