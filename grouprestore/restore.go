package grouprestore

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
)

// restore runs one device of a restore or undo job: probe, choose, snapshot,
// journal the intent, write, verify.
func (r *run) restore(ctx context.Context, seq int, d DeviceOutcome, target identifiers.ID, parked func()) {
	probeID := settingsID(target, agent.MethodRead, agent.LocWrite)
	resp, err := r.call(ctx, &d, probeID, &agent.Request{}, parked)
	if err != nil || resp.Err != nil {
		if r.abandoned(ctx) {
			return
		}
		s, why := failure("probe", err, resp)
		r.final(ctx, seq, d, s, why)
		return
	}
	if s, why := writable(resp); s != "" {
		r.final(ctx, seq, d, s, why)
		return
	}
	if s, why := r.e.distrust(d, resp.Tag, string(r.j.spec.Kind)); s != "" {
		r.final(ctx, seq, d, s, why)
		return
	}
	piece, s, why := r.choose(ctx, d, resp)
	if s != "" {
		r.final(ctx, seq, d, s, why)
		return
	}
	if d.State == Writing {
		// Resumed after a crash: write exactly what the intent says, and only
		// if the device still matches that piece.
		if piece.ID != d.Piece {
			r.final(ctx, seq, d, Failed, fmt.Sprintf("the device's tag now matches piece %s, but this job already chose %s for it; nothing more written", piece.ID, d.Piece))
			return
		}
	} else {
		snap, err := r.storeOnce(ctx, "store the pre-restore snapshot of "+d.Device, NewPiece{Client: d.Device, Group: "snapshots", Type: "snapshot", Job: r.j.id,
			Location: probeID.String(), Tag: resp.Tag, Settings: resp.Settings, Time: r.e.now()})
		if err != nil {
			if !r.abandoned(ctx) {
				r.final(ctx, seq, d, Failed, "store the pre-restore snapshot: "+err.Error())
			}
			return
		}
		d.State, d.Piece, d.Hash, d.Snapshot, d.Reason = Writing, piece.ID, piece.Hash, snap.ID, why
		if err := r.profiled(ctx, &d, piece, resp, probeID.String()); err != nil {
			if !r.abandoned(ctx) {
				r.final(ctx, seq, d, Failed, err.Error()+"; nothing written")
			}
			return
		}
		if err := r.record(ctx, seq, d); err != nil {
			if !r.abandoned(ctx) {
				r.final(ctx, seq, d, Failed, "journal the write intent: "+err.Error())
			}
			return
		}
		r.j.settle(seq, d)
	}
	r.write(ctx, seq, d, target, parked)
}

// write sends the chosen settings and verifies the device's acknowledgement.
func (r *run) write(ctx context.Context, seq int, d DeviceOutcome, target identifiers.ID, parked func()) {
	why := d.Reason
	load := r.settings
	if d.Document != "" {
		load = r.fetch // one device's own document: not worth caching
	}
	settings, err := load(ctx, d.Hash)
	if err != nil {
		r.final(ctx, seq, d, Failed, fmt.Sprintf("read piece %s from the catalog: %v; nothing written", d.Piece, err))
		return
	}
	want, _ := hex.DecodeString(d.Hash)
	req := &agent.Request{Job: r.j.id, Settings: settings, Hash: want}
	resp, err := r.call(ctx, &d, settingsID(target, agent.MethodWrite, agent.LocWrite), req, parked)
	if err != nil || resp.Err != nil {
		if r.abandoned(ctx) {
			return
		}
		s, reason := failure("write", err, resp)
		if s == Offline {
			s, reason = Failed, reason+"; the device may or may not hold the new settings"
		}
		r.final(ctx, seq, d, s, reason)
		return
	}
	if !bytes.Equal(resp.Hash, want) {
		r.final(ctx, seq, d, Failed, fmt.Sprintf("verification failed: the device acknowledged settings with hash %s, the catalog's are %s", shortHash(resp.Hash), shortHash(want)))
		return
	}
	if r.ro.ReadBack {
		rb, err := r.call(ctx, &d, settingsID(target, agent.MethodRead, agent.LocSettings), &agent.Request{}, parked)
		if err != nil || rb.Err != nil {
			if !r.abandoned(ctx) {
				s, reason := failure("read back", err, rb)
				r.final(ctx, seq, d, Failed, fmt.Sprintf("written, but %s (%s)", reason, s))
			}
			return
		}
		if !bytes.Equal(agent.Hash(rb.Settings), want) {
			r.final(ctx, seq, d, Failed, fmt.Sprintf("read back: the device holds settings with hash %s, the catalog's are %s", shortHash(agent.Hash(rb.Settings)), shortHash(want)))
			return
		}
	}
	r.final(ctx, seq, d, Restored, why)
}

// writable checks a probe's answer for the capabilities a write needs
// (agent-protocol.md section 9: a server MUST NOT write to a device that does
// not announce them). It returns Unsupported and why, or "" when the device
// may be written.
func writable(resp *agent.Response) (State, string) {
	var missing []string
	for _, c := range agent.WriteCapabilities() {
		if !slices.Contains(resp.Caps, c) {
			missing = append(missing, c)
		}
	}
	switch {
	case len(missing) == 0:
		return "", ""
	case len(resp.Caps) == 0:
		return Unsupported, fmt.Sprintf("the device announces no capabilities (no caps in its answer), so it cannot be written safely; a write needs %s; nothing written", strings.Join(agent.WriteCapabilities(), " and "))
	default:
		return Unsupported, fmt.Sprintf("the device does not announce %s (it announces %s), so it cannot be written safely; nothing written", strings.Join(missing, " and "), strings.Join(resp.Caps, ", "))
	}
}

// backup runs one device of a group backup: read its tag and settings and
// store them as a piece of the backup group.
func (r *run) backup(ctx context.Context, seq int, d DeviceOutcome, target identifiers.ID, parked func()) {
	id := settingsID(target, agent.MethodRead, agent.LocWrite)
	resp, err := r.call(ctx, &d, id, &agent.Request{}, parked)
	if err != nil || resp.Err != nil {
		if !r.abandoned(ctx) {
			s, why := failure("read", err, resp)
			r.final(ctx, seq, d, s, why)
		}
		return
	}
	if s, why := r.e.distrust(d, resp.Tag, string(KindBackup)); s != "" {
		r.final(ctx, seq, d, s, why)
		return
	}
	if !bytes.Equal(agent.Hash(resp.Settings), resp.Hash) {
		r.final(ctx, seq, d, Failed, fmt.Sprintf("read: the device's settings hash to %s but it said %s", shortHash(agent.Hash(resp.Settings)), shortHash(resp.Hash)))
		return
	}
	p, err := r.storeOnce(ctx, "store the backup of "+d.Device, NewPiece{Client: d.Device, Group: r.j.spec.Target, Type: "settings", Job: r.j.id,
		Location: id.String(), Tag: resp.Tag, Settings: resp.Settings, Time: r.e.now()})
	if err != nil {
		if !r.abandoned(ctx) {
			r.final(ctx, seq, d, Failed, "store in the catalog: "+err.Error())
		}
		return
	}
	d.Piece, d.Hash = p.ID, p.Hash
	r.final(ctx, seq, d, BackedUp, fmt.Sprintf("stored as piece %s of backup group %q", p.ID, r.j.spec.Target))
}

// abandoned reports whether the engine is closing, in which case a device is
// left where it stands for the resumed job.
func (r *run) abandoned(ctx context.Context) bool { return ctx.Err() != nil }

// chooseSnapshot is an undo's chooser: a device gets its own pre-restore
// snapshot, and only while its tag is still the one the snapshot was taken with.
func (r *run) chooseSnapshot(ctx context.Context, d DeviceOutcome, resp *agent.Response) (Piece, State, string) {
	p, err := r.e.cat.Piece(ctx, d.Piece)
	if err != nil {
		return Piece{}, Failed, fmt.Sprintf("snapshot %s: %v", d.Piece, err)
	}
	if !p.Tag.Equal(resp.Tag) {
		return Piece{}, NoMatch, fmt.Sprintf("the device's tag %q differs from its snapshot's %q; nothing written", resp.Tag.Text(), p.Tag.Text())
	}
	return p, "", fmt.Sprintf("undo: back to snapshot %s", p.ID)
}

// settings returns a piece's settings, loaded from the catalog once per job
// and checked against its hash.
func (r *run) settings(ctx context.Context, hash string) ([]byte, error) {
	r.contentMu.Lock()
	b, ok := r.content[hash]
	r.contentMu.Unlock()
	if ok {
		return b, nil
	}
	b, err := r.fetch(ctx, hash)
	if err != nil {
		return nil, err
	}
	r.contentMu.Lock()
	r.content[hash] = b
	r.contentMu.Unlock()
	return b, nil
}

// fetch reads settings from the catalog and checks them against their hash.
func (r *run) fetch(ctx context.Context, hash string) ([]byte, error) {
	b, err := r.e.cat.Content(ctx, hash)
	if err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(agent.Hash(b)); got != hash {
		return nil, fmt.Errorf("content %s hashes to %s", hash, got)
	}
	return b, nil
}

func shortHash(b []byte) string {
	h := hex.EncodeToString(b)
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
