// Package service is the one place where Fleetvault decides who may do
// what. It holds every operation on devices, groups, backups, jobs, users,
// data owners and tokens; the HTTP API (package api) and the CLI's direct
// mode (cmd/fleetvault) are thin adapters over it, so a rule lives once and
// the two cannot drift. It is named for what it provides to those adapters:
// the installation's operations as a service, each taking the caller's
// identity.
//
// # Basics
//
// Service.As(identity) returns a Session; its methods are the operations,
// authorized for that identity, and have the method set of the API's Go
// client (apiclient.Client), so a caller can use either:
//
//	svc := service.New(service.Options{Catalog: c, Engine: e})
//	id, err := svc.Authenticate(tokens, bearerToken, r.RemoteAddr)
//	devices, err := svc.As(id).Devices(ctx, "")  // only the caller's, for an owner
//
// # Rules
//
// Roles are admin (everything), operator (devices, groups, backups and jobs
// on everything) and owner (only what is assigned: catalog.Device.Owner and
// catalog.Group.Owner). The rules are in identity.go and nowhere else. An
// object the caller may not see is ErrNotFound, worded as for one that does
// not exist, so existence does not leak; an operation the role may not do at
// all is ErrForbidden. A job whose device group holds one device that is not
// the owner's is refused whole, before any device is contacted.
//
// Backups are certified by their data owner or an admin, never an operator
// (certify.go); a test restore runs through Options.Bench, which only the
// server provides, and never certifies (testrestore.go); the sweep applies
// the certification policies (sweep.go). Certification history is the
// audit log.
//
// Schedules (schedules.go, rpo.go): admins and operators manage and run
// them; an owner sees those that touch a group of theirs and the RPO of
// their own devices. The server's scheduler runs them as SchedulerIdentity
// (RunScheduled) and checks RPOs (CheckRPO), telling the event sink of a
// failed scheduled job and, once per miss, of a device that missed its RPO.
//
// Every change, and every refused attempt at one, is appended to the audit
// log (catalog.AppendAudit) before the operation returns. Names of devices,
// groups and users are checked once, by CheckName.
//
// # Caveats
//
// An owner's lists and look-ups scan the devices and groups to find what is
// theirs: one pass per request, fine for tens of thousands of devices.
// Errors carry API routes in their hints ("list them with GET
// /api/v1/devices"); the CLI rewords them as commands.
package service
