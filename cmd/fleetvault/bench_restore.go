package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/scenario"
)

func newBenchRestoreCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "restore --devices N --transport mqtt|coap [--shards N [--shard-kind embedded|mosquitto]] [--json]",
		Short: "Measure a full group restore against the transport's round-trip ceiling",
		Long: `bench restore measures, in one run on loopback, the round-trip ceiling of the
transport stack (MQTT: an 8-byte echo through the same embedded broker and
device connections; CoAP: minimal go-coap endpoints, as bench coap) and then a
full group restore (probe, match, snapshot, write, verify, journal) of N
simulated devices, and checks every device's ground truth.

The server (embedded broker, catalog, engine) runs in this process and the
simulated devices in child processes, so neither holds both ends of every
connection. ratio = devices_per_s / (ceiling_rt_per_s / 2): a restore is two
round trips per device.

The server's memory and CPU are reported per phase (start, ceiling, restore):
peak RSS, heap, goroutine stacks, goroutines and CPU seconds, with the load
average before the run; see docs/BENCHMARKS.md, "Server memory and CPU per
device".

With --shards N (MQTT), the devices are spread over N broker shard processes
instead of the server's embedded broker: fleetvault broker processes
(--shard-kind embedded) or Mosquitto (--shard-kind mosquitto, with generated
configurations), on free loopback ports, each holding its devices'
connections (so 100,000 devices fit under a 20,000 open-file limit per
process). Every device's identifier names its shard (broker:sI), fleet
children connect to one shard each, and the server holds one connection per
shard. There is no ceiling then (it is an echo through the embedded broker);
shards_peak_rss_mb adds up the shard processes and peak_rss_mb is the whole
run: server, fleet and shards.`,
		Example: `  fleetvault bench restore --devices 10000 --transport mqtt --json
  fleetvault bench restore --devices 100000 --transport mqtt --shards 7 --json
  fleetvault bench restore --devices 100000 --transport mqtt --shards 7 --shard-kind mosquitto --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg := scenario.BenchConfig{Devices: a.v.GetInt("devices"), Transport: a.v.GetString("transport"),
				Concurrency: a.v.GetInt("concurrency"), Ceiling: a.v.GetDuration("ceiling"), PerChild: a.v.GetInt("per-process"), Logger: a.log,
				Child: fleetChild(cmd.Context(), exe), Shards: a.v.GetInt("shards"), ShardKind: a.v.GetString("shard-kind"),
				Broker: func(args ...string) *exec.Cmd {
					return exec.CommandContext(cmd.Context(), exe, append([]string{"broker", "--log-level", "warn"}, args...)...)
				}}
			if cfg.Devices < 1 {
				return usageError{fmt.Errorf("--devices %d: give at least 1", cfg.Devices)}
			}
			if cfg.Shards < 0 || cfg.Shards > 64 {
				return usageError{fmt.Errorf("--shards %d: give 0 (the embedded broker) to 64", cfg.Shards)}
			}
			if path := a.v.GetString("cpuprofile"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer f.Close()
				cfg.CPUProfile = f
			}
			res, err := scenario.BenchRestore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if path := a.v.GetString("memprofile"); path != "" {
				if err := writeHeapProfile(path); err != nil {
					return err
				}
			}
			if a.v.GetBool("json") {
				return json.NewEncoder(a.stdout).Encode(res)
			}
			fmt.Fprintf(a.stdout, "%d %s devices restored in %.2fs: %.0f devices/s; ceiling %.0f round trips/s; ratio %.2f\n",
				res.Devices, res.Transport, res.Seconds, res.DevicesPerSec, res.CeilingRTPerSec, res.Ratio)
			fmt.Fprintf(a.stdout, "outcomes %s; peak memory %.0f MiB (server %.0f, fleet %.0f in %d processes", countsLine(res.Counts), res.PeakRSSMB, res.ServerRSSMB, res.FleetRSSMB, res.FleetProcesses)
			if res.Shards > 0 {
				fmt.Fprintf(a.stdout, ", %d %s broker shards %.0f", res.Shards, res.ShardKind, res.ShardRSSMB)
			}
			fmt.Fprintf(a.stdout, "); ground-truth mismatches %d\n", res.Mismatches)
			for _, ph := range res.Phases {
				fmt.Fprintf(a.stdout, "server during %s: peak %.0f MiB, heap %.0f MiB, goroutine stacks %.0f MiB, %d goroutines\n",
					ph.Phase, ph.PeakRSSMB, ph.HeapMB, ph.StacksMB, ph.Goroutines)
			}
			fmt.Fprintf(a.stdout, "load average before the run %.1f\n", res.Load1)
			if res.Mismatches > 0 {
				return fmt.Errorf("%d devices disagree with the report", res.Mismatches)
			}
			return nil
		},
	}
	f := c.Flags()
	f.Int("devices", 10000, "target devices")
	f.String("transport", "mqtt", "mqtt or coap")
	f.Int("concurrency", 2048, "devices in flight (and outstanding ceiling round trips)")
	f.Duration("ceiling", 0, "how long to measure the ceiling (default 5s)")
	f.Int("per-process", 15000, "simulated devices per fleet process")
	f.Int("shards", 0, "spread MQTT devices over this many broker shard processes (0: the server's embedded broker)")
	f.String("shard-kind", "embedded", "broker shards: embedded (fleetvault broker) or mosquitto")
	f.Bool("json", false, "print the result as JSON")
	f.String("cpuprofile", "", "write a CPU profile of this process (server side) during the restore job to FILE")
	f.String("memprofile", "", "write a heap profile of this process (server side) to FILE after the run")
	return c
}

// newBenchFleetChildCommand runs part of a benchmark's simulated fleet in a
// child process; see scenario.ServeFleetChild. It is not for people.
func newBenchFleetChildCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:    "fleet-child --fleet FILE --broker URL --devices-out FILE",
		Short:  "Run part of a benchmark's simulated fleet (used by bench restore)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := devicesim.Load(a.v.GetString("fleet"))
			if err != nil {
				return err
			}
			return scenario.ServeFleetChild(cmd.Context(), spec, a.v.GetString("broker"), a.v.GetString("coap-host"), a.v.GetString("devices-out"), os.Stdin, a.stdout, a.log)
		},
	}
	c.Flags().String("fleet", "", "fleet file")
	c.Flags().String("broker", "", "MQTT broker URL")
	c.Flags().String("devices-out", "", "where to write the device list (JSON)")
	c.Flags().String("coap-host", "127.0.0.1", "the address CoAP devices listen on")
	return c
}

// writeHeapProfile writes this process's heap profile (what was allocated
// and is still live) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// fleetChild returns how a benchmark starts a fleet child: this program's
// hidden bench fleet-child command with the child's own arguments.
func fleetChild(ctx context.Context, exe string) func(args ...string) *exec.Cmd {
	return func(args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, exe, append([]string{"bench", "fleet-child", "--log-level", "warn"}, args...)...)
	}
}
