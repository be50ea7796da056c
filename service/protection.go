package service

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
)

// Protection states of a device, as the data owner's overview ("Am I
// protected?") shows them.
const (
	Protected    = "protected"     // a backup within its RPO, not refused certification
	NotProtected = "not-protected" // no backup, one older than the RPO, or refused certification
	Unknown      = "unknown"       // a backup, but nothing to judge its age against
)

// RPO and certification states; "" reads as unknown.
const (
	RPOMet    = "met"
	RPOMissed = "missed"

	Certified    = "certified"
	NotCertified = "not-certified"
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
	// RPO is the device's recovery point objective (0: none set), RPOState
	// whether its last backup meets it (RPOMet, RPOMissed or "").
	RPO      time.Duration `json:"rpo_ns,omitempty"`
	RPOState string        `json:"rpo_state,omitempty"`
	// Cert is the certification of the last backup (Certified, NotCertified
	// or ""), CertLapses when a certification lapses (zero: never).
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
// own), by id, whether it is protected and why. now is the time backup ages
// are measured at.
func (ss *Session) Protection(_ context.Context, now time.Time) ([]DeviceProtection, error) {
	var out []DeviceProtection
	err := ss.s.cat.Devices(func(d catalog.Device) error {
		if !ss.id.ownsDevice(d) {
			return nil
		}
		dp := DeviceProtection{Device: d.ID, Category: d.Category, Domain: d.Domain}
		ps, err := ss.s.cat.Pieces(catalog.Query{Client: d.ID, Limit: lastBackupScan})
		if err != nil {
			return fmt.Errorf("backups of %s: %w", d.ID, err)
		}
		for _, p := range ps {
			if IsBackup(p) {
				dp.LastBackupID, dp.LastBackupTime = p.ID, p.Time
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
		dp.judge(now)
		out = append(out, dp)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("protection overview: %w", err)
	}
	return out, nil
}

// IsBackup tells a backup of a device's settings from the other pieces of
// its client: pre-restore snapshots and the documents a profile computed.
func IsBackup(p catalog.Piece) bool {
	return p.Type != "snapshot" && p.Type != "profiled"
}

// judge sets Status and Why from the rest, and RPOState from the RPO.
func (dp *DeviceProtection) judge(now time.Time) {
	age := now.Sub(dp.LastBackupTime)
	if dp.LastBackupID != "" && dp.RPO > 0 && dp.RPOState == "" {
		dp.RPOState = RPOMet
		if age > dp.RPO {
			dp.RPOState = RPOMissed
		}
	}
	switch {
	case dp.LastBackupID == "":
		dp.Status, dp.Why = NotProtected, "never backed up"
	case dp.RPOState == RPOMissed:
		dp.Status, dp.Why = NotProtected, fmt.Sprintf("last backup is %s old; the RPO is %s", Age(age), Age(dp.RPO))
	case dp.Cert == NotCertified:
		dp.Status, dp.Why = NotProtected, "its backup was test-restored and not certified"
	case dp.RPOState == RPOMet:
		dp.Status, dp.Why = Protected, fmt.Sprintf("last backup %s old, within the RPO of %s", Age(age), Age(dp.RPO))
	default:
		dp.Status, dp.Why = Unknown, "backed up, but no RPO is set to judge its age against"
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
