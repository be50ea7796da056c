package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/tagmatch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// run serves until ctx ends and returns the exit code: 0, 1 for a failure,
// 2 for bad usage.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("device", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "", "MQTT broker URL, e.g. mqtt://127.0.0.1:1883")
	id := fs.String("id", "home0001-climate", "device id: MQTT client id and user name")
	password := fs.String("password", os.Getenv("FLEETVAULT_DEVICE_PASSWORD"), "MQTT password (default $FLEETVAULT_DEVICE_PASSWORD)")
	coapAddr := fs.String("coap", "", "serve CoAP on this UDP address too, e.g. 127.0.0.1:5683")
	zone := fs.String("zone", "South", "the zone in the device's tag")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *broker == "" && *coapAddr == "" {
		fmt.Fprintln(stderr, "device: give --broker, --coap or both")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, *broker, *coapAddr, *id, *password, newThermostat(*zone), log); err != nil {
		fmt.Fprintf(stderr, "device: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the transports asked for until ctx ends or one fails.
func serve(ctx context.Context, broker, coapAddr, id, password string, dev agent.Device, log *slog.Logger) error {
	if err := agent.CheckDeviceID(id); err != nil {
		return err
	}
	opts := agent.HandlerOptions{Logger: log}
	var conn *net.UDPConn
	if coapAddr != "" {
		ua, err := net.ResolveUDPAddr("udp", coapAddr)
		if err != nil {
			return fmt.Errorf("--coap %s: %w", coapAddr, err)
		}
		if conn, err = net.ListenUDP("udp", ua); err != nil {
			return fmt.Errorf("--coap %s: %w", coapAddr, err)
		}
		// A CoAP request names the device by host:port: answer to the bound one.
		opts.Addresses = append(opts.Addresses, conn.LocalAddr().String())
	}
	h := agent.NewHandler(id, dev, opts)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	if conn != nil {
		srv := coap.NewServer(conn, h, coap.ServerOptions{Logger: log})
		log.Info("serving CoAP", "device", id, "addr", srv.Addr())
		wg.Go(func() { errs <- srv.Serve(ctx) })
	}
	if broker != "" {
		log.Info("serving MQTT", "device", id, "broker", broker)
		wg.Go(func() {
			errs <- mqtt.Serve(ctx, h, mqtt.DeviceOptions{BrokerURL: broker, Password: password, Logger: log})
		})
	}
	var first error
	go func() { wg.Wait(); close(errs) }()
	for err := range errs {
		if err != nil && first == nil {
			first = err
			cancel() // one transport failed for good: stop the other
		}
	}
	return first
}

// thermostat is the device: a tag, and settings guarded by a mutex because
// the agent may call it from several goroutines at once.
type thermostat struct {
	tag tagmatch.Tag

	mu       sync.Mutex
	settings agent.Settings
}

var _ agent.Device = (*thermostat)(nil)

func newThermostat(zone string) *thermostat {
	return &thermostat{
		tag: tagmatch.Tag{
			{Key: tagmatch.KeyManufacturer, Value: "Acme Corp."},
			{Key: tagmatch.KeyProduct, Value: "climate control"},
			{Key: tagmatch.KeyModel, Value: "xyz"},
			{Key: tagmatch.KeyFirmware, Value: "2.4.1"},
			{Key: tagmatch.KeyZone, Value: zone},
		},
		settings: agent.Settings{"mode": "auto", "setpoint": 21.0},
	}
}

func (d *thermostat) Tag(context.Context) (tagmatch.Tag, error) { return d.tag, nil }

func (d *thermostat) Settings(context.Context) (agent.Settings, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.settings), nil
}

// Apply takes the settings whole, or refuses them: a thermostat holds a mode
// and a setpoint between 5 and 35 degrees, and nothing else.
func (d *thermostat) Apply(_ context.Context, s agent.Settings) error {
	if err := validate(s); err != nil {
		return fmt.Errorf("thermostat: %w: %v", agent.ErrRejected, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settings = maps.Clone(s)
	return nil
}

func validate(s agent.Settings) error {
	for k, v := range s {
		switch k {
		case "mode":
			if m, _ := v.(string); m != "heat" && m != "cool" && m != "auto" && m != "off" {
				return fmt.Errorf("mode %v is not heat, cool, auto or off", v)
			}
		case "setpoint":
			c, ok := number(v)
			if !ok || c < 5 || c > 35 {
				return fmt.Errorf("setpoint %v is not a temperature between 5 and 35", v)
			}
		default:
			return fmt.Errorf("%q is not a thermostat setting", k)
		}
	}
	if _, ok := s["setpoint"]; !ok {
		return errors.New("no setpoint")
	}
	return nil
}

// number reads a CBOR number, which decodes as an integer or a float.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case uint64:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case float32:
		return float64(n), true
	}
	return 0, false
}
