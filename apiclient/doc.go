// Package apiclient is the Go client of Fleetvault's HTTP API (docs/api.md)
// and the API's wire types: the JSON bodies it takes and answers with. The
// CLI uses it to speak to a running server; package api fills the same types.
package apiclient
