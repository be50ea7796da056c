package scenario

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/repokey"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/server"
)

// Options configure a world.
type Options struct {
	Fleet *devicesim.Spec // the simulated fleet; its reference groups are the model house
	Dir   string          // the installation's directory; "" makes a temporary one, removed by Close
	Seed  uint64          // the fleet's seed; 0 uses the fleet file's
	// BackupGroup is where the reference devices are backed up; default the
	// article's "Backup Group for Reference IoT from model House".
	BackupGroup string
	Logger      *slog.Logger
	// Key encrypts the installation (catalog.InitOptions.Key); KeyDir is
	// where its key files are, recorded in the MBR. nil: in clear.
	Key    *repokey.Key
	KeyDir string
}

// DefaultBackupGroup is the article's name for the model house's backups.
const DefaultBackupGroup = "Backup Group for Reference IoT from model House"

// World is a running installation, server and simulated fleet.
type World struct {
	Server      *server.Server
	Fleet       *devicesim.Fleet
	Devices     []devicesim.DeviceInfo
	Dir         string
	BackupGroup string

	log *slog.Logger
	tmp bool
}

// Start creates the installation, starts the server with its embedded broker
// on a free loopback port, provisions every simulated device (credentials,
// identifier, tag, groups) and brings the fleet up.
func Start(ctx context.Context, opts Options) (w *World, err error) {
	w = &World{Dir: opts.Dir, BackupGroup: opts.BackupGroup, log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.BackupGroup == "" {
		w.BackupGroup = DefaultBackupGroup
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if w.Dir == "" {
		if w.Dir, err = os.MkdirTemp("", "fleetvault-world-"); err != nil {
			return w, err
		}
		w.tmp = true
	}
	keyDir := opts.KeyDir
	if opts.Key != nil && keyDir == "" {
		keyDir = filepath.Join(w.Dir, "keys")
	}
	mbr, err := catalog.Init(w.Dir, catalog.InitOptions{Server: "127.0.0.1", Key: opts.Key, KeyDir: keyDir})
	if err != nil {
		return w, err
	}
	w.Server, err = server.Start(ctx, server.Options{MBR: mbr, Key: opts.Key, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0", Logger: w.log})
	if err != nil {
		return w, err
	}
	w.Fleet, err = devicesim.New(opts.Fleet, devicesim.Options{BrokerURL: w.Server.BrokerURL(), Seed: opts.Seed, Logger: w.log})
	if err != nil {
		return w, err
	}
	w.Devices = w.Fleet.Devices()
	if err := Provision(ctx, w.Server.Catalog, w.Devices); err != nil {
		return w, err
	}
	if err := w.Fleet.Start(ctx); err != nil {
		return w, err
	}
	return w, w.Fleet.WaitOnline(ctx)
}

// Provision adds the devices to the resource database with hashed
// passwords and their tags as registered tags, and to their groups (created
// as device groups when missing).
func Provision(ctx context.Context, c *catalog.Catalog, devs []devicesim.DeviceInfo) error {
	out := make([]catalog.Device, len(devs))
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs { // argon2id per device: spread over the cores
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(devs); i += len(errs) {
				d := devs[i]
				h, err := broker.HashPassword(d.Password)
				if err != nil {
					errs[w] = fmt.Errorf("device %s: %w", d.ID, err)
					return
				}
				ident := devicesim.BaseAddress(d.Identifier)
				if d.Identifier.Method != "" { // a full identifier, e.g. naming a broker shard
					ident = d.Identifier.String()
				}
				out[i] = catalog.Device{ID: d.ID, Identifier: ident, PasswordHash: h, Role: "device",
					CoAPPSKSecret: d.CoAPKey,
					Optional:      map[string]string{"type": d.Type, "site": d.Site, catalog.OptionalTag: d.Tag.String()}}
			}
		}(w)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	const batch = 10000
	for i := 0; i < len(out); i += batch {
		if err := c.PutDevices(ctx, out[i:min(i+batch, len(out))]); err != nil {
			return err
		}
	}
	members := map[string][]string{}
	for _, d := range devs {
		members[d.Group] = append(members[d.Group], d.ID)
	}
	for g, ids := range members {
		if _, err := c.Group(g); errors.Is(err, catalog.ErrNotFound) {
			if err := c.CreateGroup(g, catalog.Group{Kind: catalog.GroupDevices}); err != nil {
				return err
			}
		}
		for i := 0; i < len(ids); i += batch {
			if err := c.AddMembers(g, ids[i:min(i+batch, len(ids))]); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReferenceGroups are the fleet's groups of reference devices (the model
// house variants), TargetGroups the others; both sorted.
func (w *World) ReferenceGroups() []string { return w.groups(true) }

// TargetGroups are the fleet's groups of devices to restore to.
func (w *World) TargetGroups() []string { return w.groups(false) }

func (w *World) groups(ref bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range w.Devices {
		if d.Reference == ref && !seen[d.Group] {
			seen[d.Group] = true
			out = append(out, d.Group)
		}
	}
	sort.Strings(out)
	return out
}

// BackupReferences backs up every reference group into the world's backup
// group, one group backup job each, and fails unless every device was stored.
func (w *World) BackupReferences(ctx context.Context) ([]*grouprestore.Job, error) {
	var jobs []*grouprestore.Job
	for _, g := range w.ReferenceGroups() {
		j, err := w.Server.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: g, Target: w.BackupGroup})
		if err != nil {
			return jobs, err
		}
		jobs = append(jobs, j)
		p, err := j.Wait(ctx)
		if err != nil {
			return jobs, err
		}
		if p.Counts[grouprestore.BackedUp] != p.Total {
			return jobs, fmt.Errorf("backup of %s: %d of %d devices backed up: %v", g, p.Counts[grouprestore.BackedUp], p.Total, p.Counts)
		}
	}
	return jobs, nil
}

// Expect returns the oracle's expectation for every device of a target
// group under the default policy.
func (w *World) Expect(group string) map[string]Expectation { return w.ExpectKeys(group, nil) }

// ExpectKeys is Expect for a policy comparing keys (nil: the default's).
func (w *World) ExpectKeys(group string, keys []string) map[string]Expectation {
	var devs []devicesim.DeviceInfo
	for _, d := range w.Devices {
		if d.Reference || d.Group == group {
			devs = append(devs, d)
		}
	}
	return Expect(devs, w.Truth(), keys)
}

// Truth returns the fleet's ground truth.
func (w *World) Truth() Truth { return fleetTruth{w.Fleet} }

// Close stops the fleet and the server and removes a temporary installation.
func (w *World) Close() error {
	var errs []error
	if w.Fleet != nil {
		errs = append(errs, w.Fleet.Close())
	}
	if w.Server != nil {
		errs = append(errs, w.Server.Close())
	}
	if w.tmp {
		errs = append(errs, os.RemoveAll(w.Dir))
	}
	return errors.Join(errs...)
}

type fleetTruth struct{ f *devicesim.Fleet }

func (t fleetTruth) Received(device, job string) []string {
	d := t.f.Device(device)
	if d == nil {
		return nil
	}
	var out []string
	for _, r := range d.Log() {
		if r.Job == job {
			out = append(out, hex.EncodeToString(r.Sent))
		}
	}
	return out
}

func (t fleetTruth) Holds(device string) string {
	d := t.f.Device(device)
	if d == nil {
		return ""
	}
	return hex.EncodeToString(d.SettingsHash())
}

// ScaleTargets sets the number of sites of every non-reference group of a
// fleet spec, e.g. the number of new homes.
func ScaleTargets(spec *devicesim.Spec, sites int) {
	for _, g := range spec.Groups {
		if !g.Reference {
			g.Sites = sites
		}
	}
}
