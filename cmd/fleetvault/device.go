package main

import (
	"github.com/fleetvault/fleetvault/api"

	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// deviceStore lists and adds devices.
type deviceStore interface {
	Devices(ctx context.Context, group string) ([]apiclient.Device, error)
	AddDevices(ctx context.Context, devices []apiclient.NewDevice, replace bool) (apiclient.AddDevicesResult, error)
}

const directStoreHelp = `

It talks to the server given by --server; when no server answers there, it
works on the installation given by --mbr directly (which a running server
holds locked: then point --server at it).`

func newDeviceCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "device",
		Short: "Add, import and list the devices of the resource database",
		Long: `device manages the devices Fleetvault backs up and restores to: their ids,
identifiers (where and how to reach them), passwords for the MQTT broker,
tags and device groups.` + directStoreHelp + exitCodesHelp,
		Args: cobra.NoArgs,
	}
	addServerFlags(c, true)
	c.AddCommand(newDeviceAddCommand(a), newDeviceImportCommand(a), newDeviceListCommand(a), newDeviceSetCommand(a))
	return c
}

func newDeviceAddCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "add ID [--identifier URI] [--password P] [--tag 'k=v; k=v'] [--group G]",
		Short: "Add one device; a password is generated and printed once unless given",
		Long: `add registers one device. Without --password a password is generated and
printed this once (it is stored hashed): configure the device with it, it is
what the device logs in to the MQTT broker with. Without --identifier the
device is reached as mqtt://ID. --group also adds it to that device group,
creating the group when missing.

--tag is what the device is: every backup and restore checks the tag the
device says against it on manufacturer, product and model, and a device that
contradicts it ends tag-mismatch, with nothing stored or written.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault device add home1-thermostat --tag 'manufacturer=Acme Corp.; model=xyz; zone=South' --group "Backup Group of Devices"
  fleetvault device add lab-lock --identifier coap://10.10.11.44:5683 --password s3cret`,
		Args: exactArgs(1, "device add needs one device id, e.g. fleetvault device add home1-thermostat"),
		RunE: func(cmd *cobra.Command, args []string) error {
			nd := apiclient.NewDevice{ID: args[0], Identifier: a.v.GetString("identifier"), Password: a.v.GetString("password"),
				Group: a.v.GetString("group"), Domain: a.v.GetString("domain"), Category: a.v.GetString("category"), Owner: a.v.GetString("owner")}
			if t := a.v.GetString("tag"); t != "" {
				tag, err := tagmatch.ParseKV(t)
				if err != nil {
					return usageError{fmt.Errorf("device add: --tag %q: %v (write it as 'manufacturer=Acme Corp.; model=xyz; zone=South')", t, err)}
				}
				nd.Tag = tag
			}
			return runDeviceAdd(cmd.Context(), a, newRemote(cmd, a), []apiclient.NewDevice{nd}, a.v.GetBool("replace"), a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.String("identifier", "", "how to reach the device, e.g. mqtt://ID or coap://host:port (default mqtt://ID)")
	f.String("password", "", "the device's MQTT password (default: generate one and print it once)")
	f.String("tag", "", "the device's registered tag, 'key=value; key=value': jobs check what the device says against it")
	f.String("group", "", "also add the device to this device group (created if missing)")
	f.String("domain", "", "the device's domain, e.g. a region")
	f.String("category", "", "the device's category: critical or non-critical (default); certification policies go by it")
	f.String("owner", "", "the device's data owner")
	f.Bool("replace", false, "overwrite a device with the same id")
	f.Bool("json", false, "print the result as JSON")
	return c
}

func newDeviceImportCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Add the devices of a CSV or YAML device list",
		Long: `import adds every device of FILE in one transaction: all or none.

A YAML file is a list of devices (or {devices: [...]}) with the keys id,
password, identifier, tag, group, type, domain, category, owner: the format
fleetvault sim --devices-out writes. A CSV file has a header line naming its
columns among id, password, identifier, group, tag, domain, category, owner,
type. A tag is written 'key=value; key=value'. Devices without a password get
one generated, printed this once. The format follows the file name (.csv,
.yaml, .yml, .json); - reads YAML or CSV from standard input.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault sim --fleet model-house --broker mqtt://127.0.0.1:1883 --devices-out devices.yaml &
  fleetvault device import devices.yaml
  fleetvault device import --replace homes.csv`,
		Args: exactArgs(1, "device import needs one file, e.g. fleetvault device import devices.yaml"),
		RunE: func(cmd *cobra.Command, args []string) error {
			nds, err := readDeviceList(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			return runDeviceAdd(cmd.Context(), a, newRemote(cmd, a), nds, a.v.GetBool("replace"), a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("replace", false, "overwrite devices with the same ids")
	c.Flags().Bool("json", false, "print the result as JSON")
	return c
}

// readDeviceList reads and parses a device list file (- is stdin).
func readDeviceList(name string, stdin io.Reader) ([]apiclient.NewDevice, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("device import: %w", err)
	}
	nds, err := parseDeviceList(name, b)
	if err != nil {
		return nil, fmt.Errorf("device import: %s: %w", name, err)
	}
	return nds, nil
}

// parseDeviceList parses b by the file name's extension, or by a look at
// its first line when the name says nothing.
func parseDeviceList(name string, b []byte) ([]apiclient.NewDevice, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return api.ParseDevicesCSV(b)
	case ".yaml", ".yml":
		return api.ParseDevicesYAML(b)
	case ".json":
		var nds []apiclient.NewDevice
		if err := json.Unmarshal(b, &nds); err != nil {
			return nil, fmt.Errorf("JSON: %v", err)
		}
		return nds, nil
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if strings.HasPrefix(strings.TrimPrefix(strings.ToLower(first), "\ufeff"), "id,") || strings.TrimSpace(strings.ToLower(first)) == "id" {
		return api.ParseDevicesCSV(b)
	}
	return api.ParseDevicesYAML(b)
}

func runDeviceAdd(ctx context.Context, a *app, r remote, nds []apiclient.NewDevice, replace, asJSON bool) error {
	var res apiclient.AddDevicesResult
	err := withStore(a, r, false, func(s store) error {
		var err error
		res, err = s.AddDevices(ctx, nds, replace)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, res)
	}
	return renderAdded(a.stdout, res)
}

// renderAdded prints what was added and, once, any generated passwords.
func renderAdded(w io.Writer, res apiclient.AddDevicesResult) error {
	generated := 0
	for _, d := range res.Devices {
		if d.Password != "" {
			generated++
		}
	}
	fmt.Fprintf(w, "added %d device(s)", len(res.Devices))
	if len(res.GroupsCreated) > 0 {
		fmt.Fprintf(w, "; created group(s) %s", strings.Join(quoteAll(res.GroupsCreated), ", "))
	}
	fmt.Fprintln(w)
	if generated == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nGenerated passwords, shown only this once (they are stored hashed):\n")
	tw := newTable(w)
	fmt.Fprintln(tw, "DEVICE\tPASSWORD\tGROUP")
	for _, d := range res.Devices {
		if d.Password != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", d.ID, d.Password, d.Group)
		}
	}
	return tw.Flush()
}

func newDeviceListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "list [--group G]",
		Short: "List devices, or the members of one device group",
		Long:  `list prints every device with its identifier and tag.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault device list
  fleetvault device list --group "Backup Group of Devices" --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDeviceList(cmd.Context(), a, newRemote(cmd, a), a.v.GetString("group"), a.v.GetBool("json"))
		},
	}
	c.Flags().String("group", "", "only the members of this device group")
	c.Flags().Bool("json", false, "print the devices as a JSON array")
	return c
}

func runDeviceList(ctx context.Context, a *app, r remote, group string, asJSON bool) error {
	var ds []apiclient.Device
	err := withStore(a, r, true, func(s store) error {
		var err error
		ds, err = s.Devices(ctx, group)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		if ds == nil {
			ds = []apiclient.Device{}
		}
		return writeJSON(a.stdout, ds)
	}
	return renderDevices(a.stdout, ds)
}

func renderDevices(w io.Writer, ds []apiclient.Device) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tIDENTIFIER\tTYPE\tTAG")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, d.Identifier, d.Optional["type"], d.Tag.String())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d device(s)\n", len(ds))
	return nil
}

// newTable returns the aligned table writer every listing uses.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 2, 4, 2, ' ', 0) }

// newFieldTable is a table of one object's fields, "Name  value" a line;
// row leaves out an empty value. Flush the table when done.
func newFieldTable(w io.Writer) (*tabwriter.Writer, func(name, value string)) {
	tw := newTable(w)
	return tw, func(name, value string) {
		if value != "" {
			fmt.Fprintf(tw, "%s\t%s\n", name, value)
		}
	}
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// exactArgs is cobra.ExactArgs with a sentence that shows how.
func exactArgs(n int, how string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{errors.New(how)}
		}
		return nil
	}
}

// addToGroups adds devices to the device groups they name, creating missing
// groups, and returns the names it created.
