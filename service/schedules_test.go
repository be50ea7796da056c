package service_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

func TestCheckSchedule(t *testing.T) {
	ok := apiclient.NewSchedule{Name: "nightly", DeviceGroup: "homes", BackupGroup: "home-backups", Cron: "0 3 * * *"}
	tests := []struct {
		name  string
		edit  func(*apiclient.NewSchedule)
		field string // "" valid
	}{
		{"valid", func(*apiclient.NewSchedule) {}, ""},
		{"valid with rpo and keep", func(ns *apiclient.NewSchedule) {
			ns.RPO, ns.Keep = "26h", &apiclient.KeepRule{Last: 7, Daily: 14}
		}, ""},
		{"no name", func(ns *apiclient.NewSchedule) { ns.Name = "" }, "name"},
		{"control character", func(ns *apiclient.NewSchedule) { ns.Name = "night\x00ly" }, "name"},
		{"no device group", func(ns *apiclient.NewSchedule) { ns.DeviceGroup = " " }, "device_group"},
		{"no backup group", func(ns *apiclient.NewSchedule) { ns.BackupGroup = "" }, "backup_group"},
		{"bad cron", func(ns *apiclient.NewSchedule) { ns.Cron = "0 25 * * *" }, "cron"},
		{"rpo not a duration", func(ns *apiclient.NewSchedule) { ns.RPO = "a day" }, "rpo"},
		{"negative rpo", func(ns *apiclient.NewSchedule) { ns.RPO = "-1h" }, "rpo"},
		{"fractional rpo", func(ns *apiclient.NewSchedule) { ns.RPO = "1.5s" }, "rpo"},
		{"negative keep", func(ns *apiclient.NewSchedule) { ns.Keep = &apiclient.KeepRule{Weekly: -1} }, "keep.weekly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := ok
			tt.edit(&ns)
			sc, keep, err := service.CheckSchedule(ns)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if sc.Name != ns.Name || sc.Cron != ns.Cron || (ns.RPO == "26h") != (sc.RPO == 26*time.Hour) || (ns.Keep == nil) != (keep == nil) {
					t.Fatalf("schedule %+v, keep %+v from %+v", sc, keep, ns)
				}
				if keep != nil && (keep.Group != ns.BackupGroup || keep.Last != 7 || keep.Daily != 14) {
					t.Fatalf("keep rule %+v", keep)
				}
				return
			}
			var fe *service.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("error %v, want a field error on %q", err, tt.field)
			}
		})
	}
}
