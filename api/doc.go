// Package api is Fleetvault's HTTP API: the route table, authentication of
// bearer tokens, and handlers that decode a request, call the installation's
// catalog and group-restore engine, and encode the answer as the JSON wire
// types of package apiclient. Package server assembles it into a running
// installation; docs/api.md and docs/openapi.yaml describe it.
package api
