package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/broker"
)

func TestNewDevice(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-new-device", "home1-thermo"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	first, entry, _ := strings.Cut(out.String(), "\n")
	secret := first[strings.LastIndex(first, " ")+1:]
	creds, err := broker.ParseCredentials([]byte(entry), "output")
	if err != nil {
		t.Fatalf("printed entry does not parse: %v\n%s", err, out.String())
	}
	id, ok, _ := creds.Lookup("home1-thermo")
	if !ok || id.Role != broker.RoleDevice {
		t.Fatalf("entry %+v", id)
	}
	if ok, err := broker.VerifyPassword(id.PasswordHash, secret); !ok || err != nil {
		t.Errorf("printed secret %q does not verify: %v", secret, err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no credentials", nil, 2, "-creds is required"},
		{"bad device id", []string{"-new-device", "a/b"}, 1, `device id "a/b"`},
		{"missing credentials file", []string{"-creds", "testdata/absent.yaml"}, 1, "testdata/absent.yaml"},
		{"unknown flag", []string{"-nope"}, 2, "-nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
}
