package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/examples/fleets"
)

type simOptions struct {
	fleet       string
	broker      string
	coapHost    string
	seed        uint64
	devicesOut  string
	summary     time.Duration
	duration    time.Duration
	mqttVersion int
	insecure    bool
	truthOut    string
}

func newSimCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "sim --fleet FILE --broker URL [flags]",
		Short: "Run a simulated fleet of MQTT and CoAP devices until interrupted",
		Long: `sim runs the devices of a fleet file (see examples/fleets/README.md): each
MQTT device connects to --broker as its own client (client id and username
its device id, password its secret) and answers the media-agent protocol on
fleetvault/v1/<id>/req; each CoAP device listens on its own port of
--coap-host and serves CoAP over DTLS (coaps://) with its own pre-shared key,
refusing plain CoAP; --insecure-coap makes them serve plain CoAP (coap://)
instead, for a lab. Faults in the fleet file (offline, late, slow, drop, reject,
corrupt, reboot) are played out. --fleet takes a path or the name of a
shipped fleet (model-house, offices, faults).

--truth-out writes the fleet's ground truth as JSON (the requests the devices
received, and every device's writes and settings hash) at every summary and
when the fleet stops, so a test can check what a server really did.

--devices-out writes the device list (id, password, identifier, coap_key,
tag, group, type) as YAML before the devices connect, so a server and its broker can
import them: the devices keep retrying until their credentials work. The
same --fleet and --seed always give the same devices and secrets (CoAP keys
included: derived from the seed, so a simulator's, not real secrets).

A summary is logged every --summary; SIGINT or SIGTERM (or --duration) stops
the fleet.

Example:

  fleetvault sim --fleet examples/fleets/model-house.yaml \
      --broker mqtt://127.0.0.1:1883 --devices-out devices.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := simOptions{fleet: a.v.GetString("fleet"), broker: a.v.GetString("broker"),
				coapHost: a.v.GetString("coap-host"), seed: a.v.GetUint64("seed"),
				devicesOut: a.v.GetString("devices-out"), summary: a.v.GetDuration("summary"),
				duration: a.v.GetDuration("duration"), mqttVersion: a.v.GetInt("mqtt-version"),
				insecure: a.v.GetBool("insecure-coap"), truthOut: a.v.GetString("truth-out")}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runSim(ctx, a, o)
		},
	}
	f := c.Flags()
	f.String("fleet", "", "fleet file, or the name of a shipped fleet (required)")
	f.String("broker", "", "MQTT broker the devices connect to, mqtt://host:port (needed for MQTT devices)")
	f.String("coap-host", "127.0.0.1", "address CoAP devices listen on, each on a port of its own")
	f.Uint64("seed", 0, "seed of the fleet (0: the fleet file's)")
	f.String("devices-out", "", "write the device list (with secrets) to this YAML file")
	f.Duration("summary", 10*time.Second, "log a summary this often")
	f.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	f.Int("mqtt-version", 4, "MQTT protocol version of the devices: 4 (3.1.1) or 5")
	f.Bool("insecure-coap", false, "CoAP devices serve plain CoAP (coap://), unauthenticated and unencrypted, instead of DTLS: for a lab only")
	f.String("truth-out", "", "write the fleet's ground truth (requests received, each device's writes) to this JSON file at every summary")
	return c
}

func runSim(ctx context.Context, a *app, o simOptions) error {
	if o.fleet == "" {
		return usageError{fmt.Errorf("sim: --fleet is required (a fleet file, or one of %v)", fleets.Names())}
	}
	if o.mqttVersion != 4 && o.mqttVersion != 5 {
		return usageError{fmt.Errorf("sim: --mqtt-version %d: expected 4 or 5", o.mqttVersion)}
	}
	spec, err := loadSimFleet(o.fleet)
	if err != nil {
		return err
	}
	if o.insecure {
		a.log.Warn("sim: CoAP devices serve plain CoAP (--insecure-coap): anyone on the network can read and write their settings; for a lab only")
	}
	fleet, err := devicesim.New(spec, devicesim.Options{BrokerURL: o.broker, CoAPHost: o.coapHost, Seed: o.seed,
		Logger: a.log, MQTTVersion: byte(o.mqttVersion), InsecureCoAP: o.insecure})
	if err != nil {
		return err
	}
	defer fleet.Close()
	if o.devicesOut != "" {
		if err := writeDeviceList(o.devicesOut, spec.Name, fleet); err != nil {
			return err
		}
		a.log.Info("sim: device list written", "file", o.devicesOut, "devices", len(fleet.Devices()))
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if err := fleet.Start(ctx); err != nil {
		if ctx.Err() != nil {
			// Stopped (a signal, or --duration) while devices were still
			// starting: a stop like any other, not a failure.
			logSimSummary(a, fleet, "sim: stopping")
			return writeTruth(o.truthOut, fleet)
		}
		return fmt.Errorf("sim: %w", err)
	}
	go func() {
		if fleet.WaitOnline(ctx) == nil {
			logSimSummary(a, fleet, "sim: every device due is online")
		}
	}()
	if o.summary <= 0 {
		o.summary = 10 * time.Second
	}
	t := time.NewTicker(o.summary)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			logSimSummary(a, fleet, "sim: stopping")
			return writeTruth(o.truthOut, fleet)
		case <-t.C:
			logSimSummary(a, fleet, "sim: summary")
			if err := writeTruth(o.truthOut, fleet); err != nil {
				return err
			}
		}
	}
}

func logSimSummary(a *app, f *devicesim.Fleet, msg string) {
	s := f.Stats()
	a.log.Info(msg, "fleet", f.Spec().Name, "devices", s.Devices, "online", s.Online, "offline", s.Offline,
		"waiting", s.Waiting, "requests", s.Requests, "answered", s.Answered, "ignored", s.Ignored,
		"writes", s.Writes, "reboots", s.Reboots, "connects", s.Connects, "connect_errors", s.ConnectErrors)
}

// loadSimFleet reads a fleet file, or a shipped fleet by name.
func loadSimFleet(name string) (*devicesim.Spec, error) {
	if _, err := os.Stat(name); err == nil {
		return devicesim.Load(name)
	}
	b, err := fleets.Read(name)
	if err != nil {
		return nil, fmt.Errorf("sim: %w (or give the path of a fleet file)", err)
	}
	return devicesim.Parse(name+".yaml", b)
}

// writeDeviceList writes the list atomically, readable by its owner only:
// it holds the devices' secrets.
func writeDeviceList(path, name string, f *devicesim.Fleet) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".devices-*.yaml")
	if err != nil {
		return fmt.Errorf("sim: write device list: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := devicesim.WriteDeviceList(tmp, name, f.Seed(), f.Devices()); err != nil {
		tmp.Close()
		return fmt.Errorf("sim: write device list %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sim: write device list %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sim: write device list: %w", err)
	}
	return nil
}

// simTruth is the fleet's ground truth as --truth-out writes it.
type simTruth struct {
	At       time.Time              `json:"at"`
	Requests uint64                 `json:"requests"` // every request any device received (probes included)
	Writes   uint64                 `json:"writes"`
	Devices  map[string]deviceTruth `json:"devices"`
}

type deviceTruth struct {
	Writes       int    `json:"writes"`        // write requests it received, whatever their outcome
	SettingsHash string `json:"settings_hash"` // of what it holds now
}

// writeTruth writes the ground truth atomically to path ("" does nothing).
func writeTruth(path string, f *devicesim.Fleet) error {
	if path == "" {
		return nil
	}
	st := f.Stats()
	tr := simTruth{At: time.Now().UTC(), Requests: st.Requests, Writes: st.Writes, Devices: map[string]deviceTruth{}}
	for _, info := range f.Devices() {
		d := f.Device(info.ID)
		tr.Devices[info.ID] = deviceTruth{Writes: len(d.Log()), SettingsHash: hex.EncodeToString(d.SettingsHash())}
	}
	b, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("sim: write ground truth: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sim: write ground truth: %w", err)
	}
	return nil
}
