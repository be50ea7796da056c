package service

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// Protection states of a device, as the data owner's overview ("Am I
// protected?") shows them.
const (
	Protected    = "protected"     // a backup within its RPO, not refused certification
	NotProtected = "not-protected" // no backup, one older than the RPO, or refused certification
	Unknown      = "unknown"       // a backup, but nothing to judge its age against
)

// DeviceProtection is one device's line of the overview.
type DeviceProtection struct {
	Device   string `json:"device"`
	Category string `json:"category,omitempty"`
	Domain   string `json:"domain,omitempty"`

	// LastBackup is the device's newest backup (not a pre-restore snapshot);
	// its zero ID: never backed up.
	LastBackupID   string    `json:"last_backup_id,omitempty"`
	LastBackupTime time.Time `json:"last_backup_time,omitzero"`
	// BackupAge is how old the last backup is.
	BackupAge time.Duration `json:"backup_age_ns,omitempty"`
	// RPO is the device's recovery point objective (0: none set; the
	// smallest of its schedules'), RPOState whether it is met
	// (apiclient.RPOMet, RPOMissed or RPOUnknown; "" no RPO), as RPO says.
	RPO      time.Duration `json:"rpo_ns,omitempty"`
	RPOState string        `json:"rpo_state,omitempty"`
	// Cert is the certification of the last backup (catalog.CertCertified,
	// CertNotCertified or CertUnknown), CertLapses when it lapses (zero:
	// never), as Certification says.
	Cert       string    `json:"certification,omitempty"`
	CertLapses time.Time `json:"certification_lapses,omitzero"`

	LastRestore *catalog.RestoreEvent `json:"last_restore,omitempty"`

	Status string `json:"status"` // Protected, NotProtected or Unknown
	Why    string `json:"why"`    // the reason for Status, in plain words
}

// lastBackupScan is how many of a client's newest pieces are looked at to
// find its newest backup past pre-restore snapshots and profiled documents.
const lastBackupScan = 4

// Protection returns, for every device the caller may see (an owner: their
// own), by id, whether it is protected and why: its last backup, its RPO
// status (the schedules' rule, RPO), the certification of its last backup
// (Certification's rule) and its last restore.
func (ss *Session) Protection(ctx context.Context) ([]DeviceProtection, error) {
	// The RPOs are read while the devices are (two cores, half the time).
	var rpo map[string]apiclient.RPOStatus
	g := new(errgroup.Group)
	g.Go(func() (err error) { rpo, err = ss.s.rpoByDevice(); return err })
	var out []DeviceProtection
	var last []catalog.Piece // each device's newest backup; zero ID: none
	mine := map[string]catalog.Device{}
	err := ss.s.cat.Devices(func(d catalog.Device) error {
		if !ss.id.ownsDevice(d) {
			return nil
		}
		mine[d.ID] = d
		dp := DeviceProtection{Device: d.ID, Category: d.Category, Domain: d.Domain}
		ps, err := ss.s.cat.Pieces(catalog.Query{Client: d.ID, Limit: lastBackupScan})
		if err != nil {
			return fmt.Errorf("backups of %s: %w", d.ID, err)
		}
		var lp catalog.Piece
		for _, p := range ps {
			if p.Type == catalog.TypeSettings {
				lp = p
				break
			}
		}
		rs, err := ss.s.cat.Restores(catalog.RestoreQuery{Device: d.ID, Limit: 1})
		if err != nil {
			return fmt.Errorf("restores of %s: %w", d.ID, err)
		}
		if len(rs) > 0 {
			dp.LastRestore = &rs[0]
		}
		out, last = append(out, dp), append(last, lp)
		return nil
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, fmt.Errorf("protection overview: %w", err)
	}
	cc, err := ss.s.certContextOf(mine)
	if err != nil {
		return nil, err
	}
	now := ss.s.now()
	for i := range out {
		dp, p := &out[i], last[i]
		if p.ID != "" {
			dp.LastBackupID, dp.LastBackupTime, dp.BackupAge = p.ID, p.Time, now.Sub(p.Time)
			rec := cc.record(p.ID)
			dp.Cert = rec.State
			if l := cc.lapses(p, rec); l != nil {
				dp.CertLapses = *l
			}
		}
		if r, ok := rpo[dp.Device]; ok {
			dp.RPO, dp.RPOState = time.Duration(r.RPOSeconds)*time.Second, r.State
		}
		dp.judge()
	}
	return out, nil
}

// rpoByDevice is the RPO status of every device of a schedule with an RPO
// (the schedules' rule, rpoOf); for a device of several schedules, the
// worst (missed, then unknown, then met; the smallest RPO among equals). It
// is not filtered for a caller: Protection keeps the caller's devices only.
func (s *Service) rpoByDevice() (map[string]apiclient.RPOStatus, error) {
	scs, err := s.cat.Schedules()
	if err != nil {
		return nil, fmt.Errorf("read the schedules: %w", err)
	}
	rank := map[string]int{apiclient.RPOMissed: 0, apiclient.RPOUnknown: 1, apiclient.RPOMet: 2}
	out := map[string]apiclient.RPOStatus{}
	now := s.now()
	for _, sc := range scs {
		if sc.RPO <= 0 {
			continue
		}
		st, err := s.rpoOf(sc, now)
		if err != nil {
			return nil, fmt.Errorf("RPO of schedule %s: %w", sc.Name, err)
		}
		for _, r := range st {
			cur, ok := out[r.Device]
			if !ok || rank[r.State] < rank[cur.State] || (rank[r.State] == rank[cur.State] && r.RPOSeconds < cur.RPOSeconds) {
				out[r.Device] = r
			}
		}
	}
	return out, nil
}

// judge sets Status and Why from the rest.
func (dp *DeviceProtection) judge() {
	switch {
	case dp.LastBackupID == "":
		dp.Status, dp.Why = NotProtected, "never backed up"
	case dp.RPOState == apiclient.RPOMissed:
		dp.Status, dp.Why = NotProtected, fmt.Sprintf("last backup is %s old; the RPO is %s", Age(dp.BackupAge), Age(dp.RPO))
	case dp.RPOState == apiclient.RPOUnknown:
		dp.Status, dp.Why = NotProtected, "never backed up by its schedule"
	case dp.Cert == catalog.CertNotCertified:
		dp.Status, dp.Why = NotProtected, "its last backup was test-restored and not certified"
	case dp.RPOState == apiclient.RPOMet:
		dp.Status, dp.Why = Protected, fmt.Sprintf("last backup %s old, within the RPO of %s", Age(dp.BackupAge), Age(dp.RPO))
	default:
		dp.Status, dp.Why = Unknown, "backed up, but no schedule sets an RPO to judge its age against"
	}
}

// Age writes a duration as a person reads an age: "45 s", "12 min",
// "3 h 5 min", "2 days 4 h".
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%d days", days)
	}
	return fmt.Sprintf("%d days %d h", days, h)
}
