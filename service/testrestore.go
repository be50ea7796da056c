package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// TestBench is where test restores run: the server's, which knows the
// installation's broker and transports.
type TestBench interface {
	// StartTwin runs a simulated device (package devicesim) with this id,
	// MQTT password and tag, connected to the installation's broker like any
	// device, and returns once the server can reach it. stop disconnects it;
	// it is called exactly once.
	StartTwin(ctx context.Context, id, password string, tag tagmatch.Tag) (stop func(), err error)
	// ReadSettings reads the settings of device, reached at identifier (as
	// the resource database holds it, e.g. mqtt://twin-1a2b), over the
	// protocol: deterministic CBOR.
	ReadSettings(ctx context.Context, device, identifier string) ([]byte, error)
}

// testRestoreTimeout bounds a whole test restore.
const testRestoreTimeout = 2 * time.Minute

// TestRestore restores a backup into a sandbox, through the real protocol
// path, and records the evidence on the backup's certification, which it
// does not change: into is "twin" (a simulated device made from the
// backup's tag, registered for the test as a test-bench device owned by the
// backup's owner, unregistered afterwards, even on failure) or the id of a
// device marked as a test bench that the caller may see. The restore is a
// normal replacement restore job (the device answers the hash of what it
// applied) of the whole document (no restore profile, so the read-back can
// be compared with the backup); the device's settings are then read back.
// The backup's owner, operators and admins may run one; it needs the server
// (Options.Bench and an engine).
func (ss *Session) TestRestore(ctx context.Context, backup string, req apiclient.TestRestoreRequest) (apiclient.Certification, error) {
	var out apiclient.Certification
	err := ss.audited("backup.test-restore", []string{backup, "into=" + req.Into}, func() error {
		if req.Into == "" {
			return &FieldError{Field: "into", Problem: "is required: \"twin\" or the id of a device marked as a test bench"}
		}
		p, err := ss.piece(backup)
		if err != nil {
			return err
		}
		if p.Type != catalog.TypeSettings {
			return errorf(ErrConflict, "backup %s is a %s, not a device's settings backup; only backups are test-restored", p.ID, p.Type)
		}
		var target *catalog.Device
		if req.Into != apiclient.TestRestoreInto {
			d, err := ss.testBenchDevice(req.Into)
			if err != nil {
				return err
			}
			target = &d
		}
		if ss.s.eng == nil || ss.s.bench == nil {
			return errorf(ErrUnprocessable, "test restores run in the server (they need its broker and job engine): run the command against a server with --server URL (fleetvault serve --http)")
		}
		ctx, cancel := context.WithTimeout(ctx, testRestoreTimeout)
		defer cancel()
		ev, err := ss.testRestore(ctx, p, req.Into, target)
		if ev != nil {
			rec, uerr := ss.s.cat.UpdateCertification(p.ID, func(r *catalog.Certification) error { r.Evidence = ev; return nil })
			if uerr != nil {
				return errors.Join(err, fmt.Errorf("record the test restore's evidence on backup %s: %w", p.ID, uerr))
			}
			cc, cerr := ss.s.certContext()
			if cerr != nil {
				return errors.Join(err, cerr)
			}
			out = cc.view(p, rec)
		}
		return err
	})
	return out, err
}

// testBenchDevice is the device a test restore may write: one the caller
// sees, marked as a test bench.
func (ss *Session) testBenchDevice(id string) (catalog.Device, error) {
	d, err := ss.device(id)
	if err != nil {
		return d, err
	}
	if !catalog.IsTestBench(d) {
		return d, errorf(ErrConflict, "device %q is not marked as a test bench, so a test restore may not write it; mark it with fleetvault device set %s --test-bench (its owner or an admin), or use --into twin", d.ID, d.ID)
	}
	return d, nil
}

// testRestore runs the test restore of p into the test-bench device
// bench, or into a twin when bench is nil, and returns its evidence (nil
// when nothing was attempted).
func (ss *Session) testRestore(ctx context.Context, p catalog.Piece, into string, bench *catalog.Device) (*catalog.TestEvidence, error) {
	var target catalog.Device
	if bench == nil {
		twin, stop, err := ss.startTwin(ctx, p)
		if err != nil {
			return nil, err
		}
		defer stop()
		target = twin
	} else {
		target = *bench
	}
	ev := &catalog.TestEvidence{Into: into, Device: target.ID, By: ss.id.User}
	fail := func(err error) (*catalog.TestEvidence, error) {
		ev.At, ev.Error = ss.s.now(), err.Error()
		return ev, errorf(ErrUnprocessable, "test restore of backup %s into %s failed: %v", p.ID, target.ID, err)
	}
	spec, err := JobSpec(apiclient.NewJob{Kind: string(grouprestore.KindRestore), Device: target.ID, Piece: p.ID, NoProfile: true})
	if err != nil {
		return nil, err
	}
	spec.Source, spec.Piece, spec.Device = p.Group, p.ID, target.ID
	start := time.Now()
	j, err := ss.s.eng.Start(ctx, spec)
	if err != nil {
		return fail(fmt.Errorf("start the restore job: %w", err))
	}
	ss.s.onJob(j)
	ev.Job = j.ID()
	if _, err := j.Wait(ctx); err != nil {
		j.Cancel()
		return fail(fmt.Errorf("restore job %s did not finish: %w", j.ID(), err))
	}
	ev.RTOMillis = time.Since(start).Milliseconds()
	devs := j.Devices()
	if len(devs) != 1 || devs[0].State != grouprestore.Restored {
		return fail(fmt.Errorf("restore job %s: %s", j.ID(), outcomeText(devs)))
	}
	ev.Verified = devs[0].Hash == p.Ref.String()
	if err := ss.readBack(ctx, target, p, ev); err != nil {
		return fail(err)
	}
	ev.At = ss.s.now()
	if !ev.Verified || !ev.ReadBack {
		return fail(fmt.Errorf("the device holds settings with hash %s, the backup's are %s", ev.SettingsHash, p.Ref))
	}
	ss.s.log.Info("test restore done", "backup", p.ID, "device", target.ID, "job", ev.Job, "rto_ms", ev.RTOMillis, "user", ss.id.User)
	return ev, nil
}

// readBack reads the device's settings after the restore into ev.
func (ss *Session) readBack(ctx context.Context, target catalog.Device, p catalog.Piece, ev *catalog.TestEvidence) error {
	raw, err := ss.s.bench.ReadSettings(ctx, target.ID, target.Identifier)
	if err != nil {
		return fmt.Errorf("read back the settings of %s: %w", target.ID, err)
	}
	sum := agent.Hash(raw)
	ev.SettingsHash, ev.SettingsSize = fmt.Sprintf("%x", sum), len(raw)
	ev.ReadBack = bytes.Equal(sum, p.Ref[:])
	settings, err := agent.DecodeSettings(raw)
	if err != nil {
		return fmt.Errorf("decode the settings read back from %s: %w", target.ID, err)
	}
	if js, err := json.Marshal(settingsdoc.JSONValue(settings)); err == nil && len(js) <= catalog.MaxEvidenceSettings {
		ev.Settings = js
	}
	return nil
}

// outcomeText says how a test restore's job ended for its device.
func outcomeText(devs []grouprestore.DeviceOutcome) string {
	if len(devs) == 0 {
		return "no device outcome"
	}
	parts := make([]string, len(devs))
	for i, d := range devs {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}

// TwinID is the device id of the twin of piece id: "twin-" and the last 12
// characters of the id (catalog-name prefixes dropped).
func TwinID(piece string) string {
	short := piece[strings.LastIndex(piece, "/")+1:]
	if len(short) > 12 {
		short = short[len(short)-12:]
	}
	return "twin-" + short
}

// startTwin registers p's twin as a test-bench device owned by p's owner,
// with a fresh password, and starts it on the bench; stop stops and
// unregisters it.
func (ss *Session) startTwin(ctx context.Context, p catalog.Piece) (catalog.Device, func(), error) {
	id := TwinID(p.ID)
	if _, err := ss.s.cat.Device(id); err == nil {
		return catalog.Device{}, nil, errorf(ErrConflict, "a test restore of backup %s is already running (its twin %s is registered); wait for it to end", p.ID, id)
	}
	cc, err := ss.s.certContext()
	if err != nil {
		return catalog.Device{}, nil, err
	}
	pw := broker.NewSecret()
	hash, err := broker.HashPassword(pw)
	if err != nil {
		return catalog.Device{}, nil, fmt.Errorf("twin %s: %w", id, err)
	}
	twin := catalog.Device{ID: id, Identifier: "mqtt://" + id, Owner: cc.owner(p), Role: catalog.RoleDevice, PasswordHash: hash,
		Category: catalog.CategoryNonCritical, Optional: map[string]string{catalog.OptionalTestBench: "true", optTwinOf: p.ID}}
	if len(p.Tag) > 0 {
		twin.Optional[optTag] = p.Tag.String()
	}
	if err := ss.s.cat.PutDevices(ctx, []catalog.Device{twin}); err != nil {
		return twin, nil, fmt.Errorf("register twin %s: %w", id, err)
	}
	unregister := func() {
		if err := ss.s.cat.DeleteDeviceEverywhere(id); err != nil {
			ss.s.log.Error("test restore: unregister twin", "device", id, "err", err)
		}
	}
	stopTwin, err := ss.s.bench.StartTwin(ctx, id, pw, p.Tag)
	if err != nil {
		unregister()
		return twin, nil, fmt.Errorf("start twin %s: %w", id, err)
	}
	return twin, func() { stopTwin(); unregister() }, nil
}

// optTwinOf is the optional device field of a twin: the backup it tests.
const optTwinOf = "twin_of"
