package service

import (
	"context"
	"fmt"
	"time"

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
const lastBackupScan = 8

// Protection returns, for every device the caller may see (an owner: their
// own), by id, whether it is protected and why: its last backup, its RPO
// status (the schedules' rule, RPO), the certification of its last backup
// (Certification's rule) and its last restore.
func (ss *Session) Protection(ctx context.Context) ([]DeviceProtection, error) {
	rpo, err := ss.rpoByDevice(ctx)
	if err != nil {
		return nil, err
	}
	cc, err := ss.s.certContext()
	if err != nil {
		return nil, err
	}
	now := ss.s.now()
	var out []DeviceProtection
	err = ss.s.cat.Devices(func(d catalog.Device) error {
		if !ss.id.ownsDevice(d) {
			return nil
		}
		dp := DeviceProtection{Device: d.ID, Category: d.Category, Domain: d.Domain}
		ps, err := ss.s.cat.Pieces(catalog.Query{Client: d.ID, Limit: lastBackupScan})
		if err != nil {
			return fmt.Errorf("backups of %s: %w", d.ID, err)
		}
		for _, p := range ps {
			if p.Type == catalog.TypeSettings {
				dp.LastBackupID, dp.LastBackupTime, dp.BackupAge = p.ID, p.Time, now.Sub(p.Time)
				v := cc.view(p, cc.record(p.ID))
				dp.Cert = v.State
				if v.LapsesAt != nil {
					dp.CertLapses = *v.LapsesAt
				}
				break
			}
		}
		if r, ok := rpo[d.ID]; ok {
			dp.RPO, dp.RPOState = time.Duration(r.RPOSeconds)*time.Second, r.State
		}
		rs, err := ss.s.cat.Restores(catalog.RestoreQuery{Device: d.ID, Limit: 1})
		if err != nil {
			return fmt.Errorf("restores of %s: %w", d.ID, err)
		}
		if len(rs) > 0 {
			dp.LastRestore = &rs[0]
		}
		dp.judge()
		out = append(out, dp)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("protection overview: %w", err)
	}
	return out, nil
}

// rpoByDevice is each device's RPO status; for a device of several
// schedules, the worst (missed, then unknown, then met; the smallest RPO
// among equals).
func (ss *Session) rpoByDevice(ctx context.Context) (map[string]apiclient.RPOStatus, error) {
	all, err := ss.RPO(ctx, "")
	if err != nil {
		return nil, err
	}
	rank := map[string]int{apiclient.RPOMissed: 0, apiclient.RPOUnknown: 1, apiclient.RPOMet: 2}
	out := make(map[string]apiclient.RPOStatus, len(all))
	for _, r := range all {
		cur, ok := out[r.Device]
		if !ok || rank[r.State] < rank[cur.State] || (rank[r.State] == rank[cur.State] && r.RPOSeconds < cur.RPOSeconds) {
			out[r.Device] = r
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
