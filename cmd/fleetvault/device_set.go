package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// deviceUpdater changes a device's category and test-bench mark.
type deviceUpdater interface {
	UpdateDevice(ctx context.Context, id string, u apiclient.DeviceUpdate) (apiclient.Device, error)
}

// DeviceSetOptions are the flags of device set.
type DeviceSetOptions struct {
	Category  string
	TestBench bool
	JSON      bool
}

// AddFlags adds the flags of device set to f.
func (o *DeviceSetOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Category, "category", "", "critical or non-critical: which certification policy applies (and, for disaster recovery, which clients are critical)")
	f.BoolVar(&o.TestBench, "test-bench", false, "mark the device as a test bench that test restores may overwrite (--test-bench=false unmarks it)")
	f.BoolVar(&o.JSON, "json", false, "print the device as JSON")
}

func newDeviceSetCommand(a *app) *cobra.Command {
	var o DeviceSetOptions
	c := &cobra.Command{
		Use:   "set DEVICE [--category critical|non-critical] [--test-bench[=false]]",
		Short: "Set a device's category or test-bench mark",
		Long: `set changes a device's category (an admin or an operator may) or marks it as
a test bench (its owner or an admin may): fleetvault certify test BACKUP
--into DEVICE restores backups into test-bench devices only.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault device set home1-lock --category critical
  fleetvault device set lab-thermostat --test-bench`,
		Args: exactArgs(1, "device set needs one device id, e.g. fleetvault device set home1-lock --category critical"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u apiclient.DeviceUpdate
			if cmd.Flags().Changed("category") {
				u.Category = &o.Category
			}
			if cmd.Flags().Changed("test-bench") {
				u.TestBench = &o.TestBench
			}
			if u.Category == nil && u.TestBench == nil {
				return usageError{errors.New("device set: give --category, --test-bench or both")}
			}
			return withStore(a, newRemote(cmd, a), false, func(s store) error {
				d, err := s.UpdateDevice(cmd.Context(), args[0], u)
				if err != nil {
					return err
				}
				if o.JSON {
					return writeJSON(a.stdout, d)
				}
				return renderDeviceMarks(a.stdout, d)
			})
		},
	}
	o.AddFlags(c.Flags())
	return c
}

// renderDeviceMarks prints a device's category and test-bench mark.
func renderDeviceMarks(w io.Writer, d apiclient.Device) error {
	cat := d.Category
	if cat == "" {
		cat = catalog.CategoryNonCritical
	}
	bench := "no"
	if d.Optional[catalog.OptionalTestBench] == "true" {
		bench = "yes"
	}
	_, err := fmt.Fprintf(w, "%s: category %s, test bench %s\n", d.ID, cat, bench)
	return err
}
