// Command fleetvault is the Fleetvault server, command line and demo.
//
// Exit codes:
//
//	0  success (for a restore: every targeted device restored)
//	1  an error: bad input, configuration, or a failure of Fleetvault itself
//	2  bad usage: an unknown command or flag
//	3  a job finished, but some targeted devices did not end restored
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
