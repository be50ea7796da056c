// Package service is the one place where Fleetvault decides who may do what:
// API tokens, and the operations on devices, groups, backups and jobs that
// the HTTP API and the CLI's direct-store mode both call.
package service
