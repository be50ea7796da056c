package scenario

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/fleetvault/fleetvault/devicesim"
)

// A fleet child is a process that runs part of a simulated fleet for a
// benchmark in another process, so that neither process needs a file
// descriptor per device for both ends of every connection. It speaks a line
// protocol: it writes its devices to a JSON file, prints "devices", and then
// answers commands read from standard input, one per line:
//
//	start        bring the fleet up; print "ready" once every device is online
//	echo on|off  make MQTT devices echo requests (the ceiling) or answer them
//	truth JOB    print one JSON line: what the devices received from JOB and hold
//
// It exits when standard input ends.

// ChildTruth is a fleet child's ground truth about one job.
type ChildTruth struct {
	Devices   int            `json:"devices"` // non-reference devices
	Written   int            `json:"written"` // of which the job wrote at least once
	Multi     int            `json:"multi"`   // of which the job sent two different settings
	HoldsZone map[string]int `json:"holds"`   // "zone/hash" -> devices holding that hash
	SentZone  map[string]int `json:"sent"`    // "zone/hash" -> devices the job sent that hash
}

// ServeFleetChild runs a fleet child (see above) until in ends.
// CoAP devices listen on coapHost ("" for 127.0.0.1), one UDP port each.
func ServeFleetChild(ctx context.Context, spec *devicesim.Spec, brokerURL, coapHost, devicesOut string, in io.Reader, out io.Writer, log *slog.Logger) error {
	f, err := devicesim.New(spec, devicesim.Options{BrokerURL: brokerURL, CoAPHost: coapHost, Logger: log})
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := json.Marshal(f.Devices())
	if err != nil {
		return err
	}
	if err := os.WriteFile(devicesOut, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintln(out, "devices")
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "start":
			if err := f.Start(ctx); err != nil {
				return err
			}
			if err := f.WaitOnline(ctx); err != nil {
				return err
			}
			fmt.Fprintln(out, "ready")
		case "echo":
			f.SetEcho(arg == "on")
			fmt.Fprintln(out, "ok")
		case "truth":
			b, err := json.Marshal(childTruth(f, arg))
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\n", b)
		default:
			return fmt.Errorf("fleet child: unknown command %q", sc.Text())
		}
	}
	return sc.Err()
}

func childTruth(f *devicesim.Fleet, job string) ChildTruth {
	t := ChildTruth{HoldsZone: map[string]int{}, SentZone: map[string]int{}}
	for _, info := range f.Devices() {
		if info.Reference {
			continue
		}
		t.Devices++
		zone, _ := info.Tag.Get("zone")
		d := f.Device(info.ID)
		sent := map[string]bool{}
		for _, r := range d.Log() {
			if r.Job == job {
				sent[hex.EncodeToString(r.Sent)] = true
			}
		}
		if len(sent) > 0 {
			t.Written++
		}
		if len(sent) > 1 {
			t.Multi++
		}
		for h := range sent {
			t.SentZone[zone+"/"+h]++
		}
		t.HoldsZone[zone+"/"+hex.EncodeToString(d.SettingsHash())]++
	}
	return t
}
