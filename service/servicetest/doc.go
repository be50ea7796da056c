// Package servicetest holds test doubles for the tests of package service
// and of what is built on it: Events, an event sink that keeps what it is
// told (service.EventSink) so a test can check who would be told what
// without delivering anything.
package servicetest
