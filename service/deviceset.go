package service

import (
	"context"
	"fmt"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// UpdateDevice changes a device's category (critical or non-critical: an
// admin or an operator may) or its test-bench mark (which lets a test
// restore write the device: its owner or an admin may). Absent fields stay.
func (ss *Session) UpdateDevice(ctx context.Context, id string, u apiclient.DeviceUpdate) (apiclient.Device, error) {
	var out apiclient.Device
	objs := []string{id}
	if u.Category != nil {
		objs = append(objs, "category="+*u.Category)
	}
	if u.TestBench != nil {
		objs = append(objs, fmt.Sprintf("test_bench=%t", *u.TestBench))
	}
	err := ss.audited("device.update", objs, func() error {
		d, err := ss.device(id)
		if err != nil {
			return err
		}
		if u.Category == nil && u.TestBench == nil {
			return errorf(ErrInvalid, "nothing to change: give \"category\" or \"test_bench\"")
		}
		if u.Category != nil {
			if err := ss.id.requireManage("change a device's category"); err != nil {
				return err
			}
			if err := catalog.CheckCategory(*u.Category); err != nil {
				return &FieldError{Field: "category", Problem: fmt.Sprintf("must be %s or %s, not %q", catalog.CategoryCritical, catalog.CategoryNonCritical, *u.Category)}
			}
			d.Category = *u.Category
		}
		if u.TestBench != nil {
			if ss.id.Role != RoleAdmin && d.Owner != ss.id.User {
				return ss.id.forbid(fmt.Sprintf("mark device %s as a test bench; its owner or an admin may", d.ID))
			}
			if d.Optional == nil {
				d.Optional = map[string]string{}
			}
			if *u.TestBench {
				d.Optional[catalog.OptionalTestBench] = "true"
			} else {
				delete(d.Optional, catalog.OptionalTestBench)
			}
		}
		if err := ss.s.cat.PutDevices(ctx, []catalog.Device{d}); err != nil {
			return fmt.Errorf("update device %s: %w", d.ID, err)
		}
		out = DeviceView(d)
		return nil
	})
	return out, err
}
