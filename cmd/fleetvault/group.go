package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog"
)

// groupStore lists, creates and fills groups.
type groupStore interface {
	Groups(ctx context.Context) ([]apiclient.Group, error)
	CreateGroup(ctx context.Context, g apiclient.NewGroup) (apiclient.Group, error)
	AddMembers(ctx context.Context, group string, ids []string) (apiclient.MembersResult, error)
}

func newGroupCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "group",
		Short: "Create, fill and list device groups and backup groups",
		Long: `group manages the resource database's groups: a device group is a set of
target devices ("Backup Group of Devices": home1, home2, ...); a backup group
is a named set of backups ("Backup Group for Reference IoT from model House").` + directStoreHelp + exitCodesHelp,
		Args: cobra.NoArgs,
	}
	addServerFlags(c, true)
	c.AddCommand(newGroupCreateCommand(a), newGroupAddCommand(a), newGroupListCommand(a), newGroupProfileCommand(a))
	return c
}

func newGroupCreateCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "create NAME [--kind devices|backup] [--domain D] [--category C] [--owner O] [--description TEXT]",
		Short: "Create a device group or a backup group",
		Long:  `create adds an empty group. Names may hold spaces; quote them.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault group create "Backup Group of Devices" --description "new homes, phase 1"
  fleetvault group create "Backup Group for Reference IoT from model House" --kind backup --owner builder`,
		Args: exactArgs(1, `group create needs one group name, e.g. fleetvault group create "Backup Group of Devices"`),
		RunE: func(cmd *cobra.Command, args []string) error {
			ng := apiclient.NewGroup{Name: args[0], Kind: a.v.GetString("kind"), Domain: a.v.GetString("domain"),
				Category: a.v.GetString("category"), Owner: a.v.GetString("owner"), Description: a.v.GetString("description")}
			if ng.Kind != catalog.GroupDevices && ng.Kind != catalog.GroupBackup {
				return usageError{fmt.Errorf("group create: --kind %q: give %s or %s", ng.Kind, catalog.GroupDevices, catalog.GroupBackup)}
			}
			return runGroupCreate(cmd.Context(), a, newRemote(cmd, a), ng, a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.String("kind", catalog.GroupDevices, "devices (target devices) or backup (backed-up settings)")
	f.String("domain", "", "the group's domain, e.g. a region")
	f.String("category", "", "the group's category, e.g. critical")
	f.String("owner", "", "the group's data owner")
	f.String("description", "", "what the group is for")
	f.Bool("json", false, "print the group as JSON")
	return c
}

func runGroupCreate(ctx context.Context, a *app, r remote, ng apiclient.NewGroup, asJSON bool) error {
	var g apiclient.Group
	err := withStore(a, r, false, func(s store) error {
		var err error
		g, err = s.CreateGroup(ctx, ng)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, g)
	}
	fmt.Fprintf(a.stdout, "created %s group %q\n", g.Kind, g.Name)
	return nil
}

func newGroupAddCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "add NAME DEVICE...",
		Short: "Add existing devices to a group",
		Long:  `add makes devices members of a group; every device must exist.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault group add "Backup Group of Devices" home1-thermostat home1-lights home2-thermostat
  fleetvault device list --json | jq -r '.[].id' | xargs fleetvault group add "All devices"`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{errors.New(`group add needs a group name and at least one device, e.g. fleetvault group add "Backup Group of Devices" home1-thermostat`)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGroupAdd(cmd.Context(), a, newRemote(cmd, a), args[0], args[1:], a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the result as JSON")
	return c
}

func runGroupAdd(ctx context.Context, a *app, r remote, group string, ids []string, asJSON bool) error {
	var res apiclient.MembersResult
	err := withStore(a, r, false, func(s store) error {
		var err error
		res, err = s.AddMembers(ctx, group, ids)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "added %d device(s) to %q; it has %d member(s)\n", len(res.Changed), res.Group, res.MemberCount)
	return nil
}

func newGroupListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:     "list",
		Short:   "List groups with their kind and member count",
		Long:    `list prints every group.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault group list --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGroupList(cmd.Context(), a, newRemote(cmd, a), a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the groups as a JSON array")
	return c
}

func runGroupList(ctx context.Context, a *app, r remote, asJSON bool) error {
	var gs []apiclient.Group
	err := withStore(a, r, true, func(s store) error {
		var err error
		gs, err = s.Groups(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		if gs == nil {
			gs = []apiclient.Group{}
		}
		return writeJSON(a.stdout, gs)
	}
	return renderGroups(a.stdout, gs)
}

func renderGroups(w io.Writer, gs []apiclient.Group) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tKIND\tMEMBERS\tOWNER\tDESCRIPTION")
	for _, g := range gs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", g.Name, g.Kind, g.MemberCount, g.Owner, g.Description)
	}
	return tw.Flush()
}
