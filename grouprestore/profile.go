package grouprestore

import (
	"context"
	"fmt"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// ProfiledGroup is the catalog group of the documents a profile computed:
// what each device was sent, kept so a restore is auditable.
const ProfiledGroup = "profiled"

// compileProfile checks a spec's profile; a spec without one gives nil.
func compileProfile(spec Spec) (*settingsdoc.Compiled, error) {
	if spec.Profile == nil {
		return nil, nil
	}
	if spec.Kind != KindRestore && spec.Kind != KindDrift {
		return nil, fmt.Errorf("a profile shapes restores, not %ss", spec.Kind)
	}
	c, err := spec.Profile.Compile()
	if err != nil {
		return nil, fmt.Errorf("restore profile: %w", err)
	}
	return c, nil
}

// document returns the settings a device gets from piece: the piece's own,
// or, under a profile, the piece merged with the device's current settings.
func (r *run) document(ctx context.Context, deviceID string, piece Piece, resp *agent.Response) ([]byte, error) {
	backup, err := r.settings(ctx, piece.Hash)
	if err != nil {
		return nil, fmt.Errorf("read piece %s from the catalog: %w", piece.ID, err)
	}
	if r.profile == nil {
		return backup, nil
	}
	data := settingsdoc.Data{
		Device: settingsdoc.DeviceData{ID: deviceID, Group: r.spec.Target},
		Tag:    settingsdoc.TagData(resp.Tag),
		Backup: settingsdoc.BackupData{Client: piece.Client, Piece: piece.ID},
	}
	doc, err := r.profile.Apply(backup, resp.Settings, data)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", r.profile.Profile().Name, err)
	}
	return doc, nil
}

// profiled computes and stores the document a profile gives a device, and
// records it in d (its hash becomes the hash to write and verify). Without a
// profile the piece's own hash stands.
func (r *run) profiled(ctx context.Context, d *DeviceOutcome, piece Piece, resp *agent.Response, location string) error {
	if r.profile == nil {
		return nil
	}
	doc, err := r.document(ctx, d.Device, piece, resp)
	if err != nil {
		return err
	}
	p, err := r.e.store.Do(ctx, NewPiece{Client: d.Device, Group: ProfiledGroup, Type: "profiled", Job: r.j.id,
		Location: location, Tag: resp.Tag, Settings: doc, Time: r.e.now()})
	if err != nil {
		return fmt.Errorf("store the document of profile %s: %w", r.profile.Profile().Name, err)
	}
	d.Hash, d.Document = p.Hash, p.ID
	d.Reason += fmt.Sprintf("; profile %s applied (document %s)", r.profile.Profile().Name, p.ID)
	return nil
}

// planDiff is a dry run's diff for one device: its current settings against
// the document it would get.
func (r *run) planDiff(ctx context.Context, deviceID string, piece Piece, resp *agent.Response) (settingsdoc.Diff, error) {
	doc, err := r.document(ctx, deviceID, piece, resp)
	if err != nil {
		return settingsdoc.Diff{}, err
	}
	cur, err := agent.DecodeSettings(resp.Settings)
	if err != nil {
		return settingsdoc.Diff{}, fmt.Errorf("the device's current settings: %w", err)
	}
	next, err := agent.DecodeSettings(doc)
	if err != nil {
		return settingsdoc.Diff{}, fmt.Errorf("the document to write: %w", err)
	}
	return settingsdoc.DiffSettings("device", "restore", cur, next), nil
}
