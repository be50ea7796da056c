package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPruneKeepsNewestCertified: whatever the keep rule or expiry says, a
// client's newest certified piece stays, in a dry run and for real, and
// the report says why; an older certified piece goes by the rule.
func TestPruneKeepsNewestCertified(t *testing.T) {
	now := t0.AddDate(0, 2, 0)
	tests := []struct {
		name     string
		pieces   []NewPiece
		rules    []KeepRule
		certify  []int // indexes (in ingest order) of pieces certified
		notCert  []int
		wantKept []int // indexes kept only by the certification rule
		removed  int
	}{
		{"keep last 1 would drop the certified one", dailyPieces("a", "g", 2, time.Time{}), []KeepRule{{Client: "a", Last: 1}}, []int{3}, nil, []int{3}, 6},
		{"only the newest certified is protected", dailyPieces("a", "g", 2, time.Time{}), []KeepRule{{Client: "a", Last: 1}}, []int{1, 4}, nil, []int{4}, 6},
		{"expired certified stays", dailyPieces("a", "g", 2, t0.AddDate(0, 1, 0)), nil, []int{2}, nil, []int{2}, 7},
		{"not-certified is not protected", dailyPieces("a", "g", 2, time.Time{}), []KeepRule{{Client: "a", Last: 1}}, nil, []int{3}, nil, 7},
		{"certified newest needs no protection", dailyPieces("a", "g", 2, time.Time{}), []KeepRule{{Client: "a", Last: 1}}, []int{7}, nil, nil, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustCreate(t, Options{Now: func() time.Time { return now }})
			ps := mustIngest(t, c, tt.pieces)
			for _, i := range tt.certify {
				if err := c.PutCertification(Certification{Piece: ps[i].ID, State: CertCertified, By: "olive", At: now}); err != nil {
					t.Fatal(err)
				}
			}
			for _, i := range tt.notCert {
				if err := c.PutCertification(Certification{Piece: ps[i].ID, State: CertNotCertified, By: "olive", At: now}); err != nil {
					t.Fatal(err)
				}
			}
			for _, dry := range []bool{true, false} {
				rep, err := c.Prune(context.Background(), tt.rules, dry)
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Removed) != tt.removed {
					t.Fatalf("dry %v: removed %d, want %d", dry, len(rep.Removed), tt.removed)
				}
				if len(rep.Protected) != len(tt.wantKept) {
					t.Fatalf("dry %v: protected %v, want indexes %v", dry, rep.Protected, tt.wantKept)
				}
				for i, k := range tt.wantKept {
					if rep.Protected[i].ID != ps[k].ID || !strings.Contains(rep.Protected[i].Reason, "newest certified") {
						t.Errorf("dry %v: protected %s (%s), want %s", dry, rep.Protected[i].ID, rep.Protected[i].Reason, ps[k].ID)
					}
				}
			}
			for _, k := range tt.wantKept {
				if _, err := c.Piece(ps[k].ID); err != nil {
					t.Errorf("certified piece %s pruned: %v", ps[k].ID, err)
				}
			}
		})
	}
}

// TestCertificationRecords: records round-trip, a missing one reads as
// unknown, pruning drops the records of pruned pieces, and check verifies
// the buckets.
func TestCertificationRecords(t *testing.T) {
	now := t0.AddDate(0, 2, 0)
	c, _ := mustCreate(t, Options{Now: func() time.Time { return now }})
	ps := mustIngest(t, c, dailyPieces("a", "g", 1, time.Time{}))
	got, err := c.Certification(ps[0].ID)
	if err != nil || got.State != CertUnknown {
		t.Fatalf("no record: %+v %v", got, err)
	}
	ev := &TestEvidence{Job: "j1", Into: "twin", Device: "twin-x", Verified: true, ReadBack: true, RTOMillis: 12, At: now}
	if err := c.PutCertification(Certification{Piece: ps[0].ID, State: CertNotCertified, By: "olive", At: now, Note: "bad", Evidence: ev}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateCertification(ps[1].ID, func(r *Certification) error { r.State = CertCertified; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.PutCertification(Certification{Piece: ps[2].ID, State: "maybe"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad state stored: %v", err)
	}
	got, _ = c.Certification(ps[0].ID)
	if got.State != CertNotCertified || got.Evidence == nil || got.Evidence.Job != "j1" || !got.At.Equal(now) {
		t.Fatalf("round trip: %+v", got)
	}
	if err := c.SetCertPolicy(CertPolicy{Category: CategoryCritical, LapseDays: 30, RemindDays: 3}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCertPolicy(CertPolicy{Category: "vital", LapseDays: 30}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad category stored: %v", err)
	}
	pol, stored, err := c.CertPolicies()
	if err != nil || len(pol) != 2 || pol[0].LapseDays != 30 || !stored[CategoryCritical] || stored[CategoryNonCritical] || pol[1] != DefaultCertPolicy(CategoryNonCritical) {
		t.Fatalf("policies %+v %v %v", pol, stored, err)
	}
	var problems []Problem
	if err := c.Check(true, func(p Problem) { problems = append(problems, p) }); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", err, problems)
	}
	if _, err := c.Prune(context.Background(), []KeepRule{{Client: "a", Last: 1}}, false); err != nil {
		t.Fatal(err)
	}
	all, _ := c.Certifications()
	if _, ok := all[ps[0].ID]; ok {
		t.Errorf("record of pruned piece %s kept", ps[0].ID)
	}
	if _, ok := all[ps[1].ID]; !ok {
		t.Errorf("record of the newest certified piece %s dropped", ps[1].ID)
	}
}
