package main

import "github.com/spf13/cobra"

// commands lists every top-level command, explicitly, in the order --help shows them.
// Each command lives in its own file: newXCommand builds it, runX does the work.
func commands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newVersionCommand(a),
		newDemoCommand(a),
		newBenchCommand(a),
		newSimCommand(a),
		newServeCommand(a),
		newBrokerCommand(a),
		newTokenCommand(a),
		newUserCommand(a), newOwnerCommand(a), newAuditCommand(a), newNotifyCommand(a), newStatsCommand(a),
		newDeviceCommand(a), newGroupCommand(a), newBackupCommand(a), newRestoreCommand(a), newProfileCommand(a), newDriftCommand(a), newJobsCommand(a), newUndoCommand(a), newBackupsCommand(a), newCertifyCommand(a),
		newScheduleCommand(a), newRPOCommand(a),
		newInitCommand(a),
		newCheckCommand(a),
		newKeyCommand(a),
		newCatalogCommand(a),
		newInstallCommand(a),
		newIdentCommand(a),
	}
}
