package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog"
)

func newOwnerCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "owner",
		Short: "Assign devices, device groups and backup groups to data owners",
		Long: `owner gives a data owner (a user with role owner) the devices, device groups
and backup groups they may see and act on, or takes them back. A device group
is assigned with the devices in it. A resource that already has another
owner is refused: unassign it first. Backups taken from an owner's devices
carry that owner (piece_owner in the catalog and its export).` + peopleHelp,
		Args: cobra.NoArgs,
	}
	c.AddCommand(
		newOwnerChangeCommand(a, "assign", "Make USER the data owner of devices and groups", peopleStore.AssignOwner),
		newOwnerChangeCommand(a, "unassign", "Take devices and groups back from USER", peopleStore.UnassignOwner),
	)
	addServerFlags(c, true)
	return c
}

// ownerOptions are the resources an owner command names.
type ownerOptions struct {
	a catalog.Assignment
}

func (o *ownerOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringArrayVar(&o.a.Devices, "device", nil, "a device id (repeatable)")
	f.StringArrayVar(&o.a.Groups, "group", nil, "a device group, with the devices in it (repeatable)")
	f.StringArrayVar(&o.a.BackupGroups, "backup-group", nil, "a backup group (repeatable)")
}

func newOwnerChangeCommand(a *app, verb, short string, change func(peopleStore, context.Context, string, catalog.Assignment) error) *cobra.Command {
	var o ownerOptions
	c := &cobra.Command{
		Use:   verb + " USER (--device ID | --group NAME | --backup-group NAME)...",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(o.a.Devices)+len(o.a.Groups)+len(o.a.BackupGroups) == 0 {
				return usageError{fmt.Errorf("owner %s: name at least one --device, --group or --backup-group", verb)}
			}
			return withAdmin(cmd, a, func(ls peopleStore) error {
				if err := change(ls, cmd.Context(), args[0], o.a); err != nil {
					return fmt.Errorf("owner %s: %w", verb, err)
				}
				fmt.Fprintf(a.stdout, "%sed %d device(s), %d device group(s), %d backup group(s) for %q\n", verb,
					len(o.a.Devices), len(o.a.Groups), len(o.a.BackupGroups), args[0])
				return nil
			})
		},
	}
	o.AddFlags(c)
	return c
}
