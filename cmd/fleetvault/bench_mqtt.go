package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/devicesim/simbench"
	"github.com/fleetvault/fleetvault/scenario"
)

// benchTransportFlags are the flags bench mqtt and bench coap share.
func benchTransportFlags(c *cobra.Command) {
	f := c.Flags()
	f.Int("devices", 1000, "simulated devices")
	f.Duration("duration", 10*time.Second, "length of each measurement")
	f.Duration("warmup", 2*time.Second, "warm-up before each measurement")
	f.Int("rounds", 3, "alternations of ceiling and probes, each --duration/--rounds long")
	f.Int("concurrency", 100, "round trips outstanding at most (the embedded broker queues at most 128 messages for one client)")
	f.Bool("json", false, "print the result as JSON")
}

func benchConfig(a *app) (simbench.Config, error) {
	cfg := simbench.Config{Devices: a.v.GetInt("devices"), Duration: a.v.GetDuration("duration"),
		Warmup: a.v.GetDuration("warmup"), Concurrency: a.v.GetInt("concurrency"), Rounds: a.v.GetInt("rounds"), Logger: a.log}
	if cfg.Devices <= 0 || cfg.Duration <= 0 || cfg.Concurrency <= 0 || cfg.Rounds <= 0 {
		return cfg, usageError{fmt.Errorf("--devices, --duration, --rounds and --concurrency must be positive")}
	}
	return cfg, nil
}

func newBenchMQTTCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "mqtt [--devices N] [--json]",
		Short: "Measure MQTT round trips: the transport's ceiling and agent probes",
		Long: `bench mqtt starts the embedded broker (in a child process, so each process
needs one descriptor per device), --devices simulated MQTT devices (lean
clients, one connection each) and measures, on loopback, for --duration each
(in --rounds alternations, so a change of load favours neither):

  ceiling  one lean server-side connection publishes 8-byte requests (QoS 1)
           that the same device clients echo back untouched; the same with a
           paho client (as agent/mqtt uses) gives paho_ceiling_rt_per_s
  probe    READ:SETTINGS?TAG through the agent/mqtt transport, answered by
           the devices' agent handlers

with at most --concurrency round trips outstanding. It prints devices,
ceiling_rt_per_s, probe_rt_per_s, ratio (probe/ceiling), rss_mb (this
process: devices and server side), broker_rss_mb, seconds, requests and errors.
Targets: ratio at least 0.8; at least 15,000 probes/s at 10,000 devices.

With --stack embedded it measures fleetvault serve's own path instead: the
embedded broker and the server's in-process transport in this process, the
devices in child processes; the ceiling is an 8-byte echo through the same
broker, in-process client and device connections.

Example:

  fleetvault bench mqtt --devices 10000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if creds := a.v.GetString("serve-broker"); creds != "" {
				return simbench.ServeBroker(cmd.Context(), creds, os.Stdin, a.stdout)
			}
			cfg, err := benchConfig(a)
			if err != nil {
				return err
			}
			switch stack := a.v.GetString("stack"); stack {
			case "embedded":
				return runBenchEmbedded(cmd, a, cfg)
			case "paho":
			default:
				return usageError{fmt.Errorf("--stack %q: give paho or embedded", stack)}
			}
			if !a.v.GetBool("in-process-broker") {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench mqtt: find this program to run the broker: %w", err)
				}
				cfg.BrokerCommand = func(creds string) *exec.Cmd {
					return exec.Command(exe, "bench", "mqtt", "--serve-broker", creds, "--log-level", "warn")
				}
			}
			return runBenchTransport(cmd.Context(), a, cfg, simbench.RunMQTT)
		},
	}
	benchTransportFlags(c)
	f := c.Flags()
	f.String("stack", "paho", "paho: the server speaks to the broker over TCP with paho, as with an external broker (Mosquitto, EMQX); embedded: fleetvault serve's own path, the embedded broker and the server in one process, devices in child processes")
	f.Bool("in-process-broker", false, "run the broker in this process (needs two descriptors per device)")
	f.String("serve-broker", "", "internal: run the benchmark's broker with this credentials file")
	_ = f.MarkHidden("serve-broker")
	return c
}

func runBenchTransport(ctx context.Context, a *app, cfg simbench.Config, run func(context.Context, simbench.Config) (*simbench.Result, error)) error {
	res, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	if a.v.GetBool("json") {
		return writeJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "%s, %d devices, %d outstanding: ceiling %.0f rt/s, probe %.0f rt/s, ratio %.2f; %d probes (%d errors) in %.1fs; RSS %.0f MiB",
		res.Transport, res.Devices, res.Concurrency, res.CeilingRTPerSec, res.ProbeRTPerSec, res.Ratio, res.Requests, res.Errors, res.Seconds, res.RSSMB)
	if res.BrokerRSSMB > 0 {
		fmt.Fprintf(a.stdout, " (broker %.0f MiB)", res.BrokerRSSMB)
	}
	if res.CPUMicrosPerProbe > 0 {
		fmt.Fprintf(a.stdout, "; %.1f us CPU per probe (DTLS %v)", res.CPUMicrosPerProbe, res.DTLS)
	}
	if res.HandshakesPerSec > 0 {
		fmt.Fprintf(a.stdout, "; %.0f handshakes/s, %.0f us CPU each", res.HandshakesPerSec, res.CPUMicrosPerHandshake)
	}
	fmt.Fprintln(a.stdout)
	return nil
}

// runBenchEmbedded measures the embedded-broker stack (scenario.BenchProbe).
func runBenchEmbedded(cmd *cobra.Command, a *app, cfg simbench.Config) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	res, err := scenario.BenchProbe(cmd.Context(), scenario.BenchConfig{Devices: cfg.Devices, Concurrency: cfg.Concurrency, Ceiling: cfg.Duration, Logger: a.log,
		Child: fleetChild(cmd.Context(), exe)})
	if err != nil {
		return err
	}
	if a.v.GetBool("json") {
		return writeJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "mqtt (embedded broker), %d devices, %d outstanding: ceiling %.0f rt/s, probe %.0f rt/s, ratio %.2f; %d probes (%d errors) in %.1fs; RSS %.0f MiB\n",
		res.Devices, res.Concurrency, res.CeilingRTPerSec, res.ProbeRTPerSec, res.Ratio, res.Requests, res.Errors, res.Seconds, res.RSSMB)
	return nil
}
