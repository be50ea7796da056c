// Package api is Fleetvault's HTTP API: the route table, bearer-token
// authentication, and handlers that decode a request, call package service
// as the caller (the only place that decides who may do what) and encode the
// answer as the JSON wire types of package apiclient. Package server
// assembles it into a running installation; docs/api.md and
// docs/openapi.yaml describe it.
//
// Every authentication failure passes through API.authenticate, and the
// service's kinds of error map to statuses in one table (statusOf): 401
// unauthenticated, 403 not for this role, 404 missing or not the caller's,
// 400 invalid, 409 conflict, 422 cannot be carried out.
package api
