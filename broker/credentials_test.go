package broker

import (
	"strings"
	"testing"
)

func TestLoadCredentialsFile(t *testing.T) {
	c, err := LoadCredentialsFile("testdata/credentials.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		role Role
	}{{"home1-thermo", RoleDevice}, {"fleetvault", RoleServer}} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok, err := c.Lookup(tc.name)
			if err != nil || !ok || id.Role != tc.role || id.Name != tc.name {
				t.Fatalf("Lookup = %+v, %v, %v", id, ok, err)
			}
			if ok, err := VerifyPassword(id.PasswordHash, "password"); !ok || err != nil {
				t.Errorf("password does not verify: %v", err)
			}
		})
	}
	if _, ok, _ := c.Lookup("nobody"); ok {
		t.Error("unknown name found")
	}
}

func TestLoadCredentialsFileErrors(t *testing.T) {
	const h = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$55PWTvddWPUD1GMbKxSff4ASfF85k9ibHJt4HlHQtBM"
	t.Run("missing file", func(t *testing.T) {
		_, err := LoadCredentialsFile("testdata/absent.yaml")
		if err == nil || !strings.Contains(err.Error(), "testdata/absent.yaml") {
			t.Errorf("error %v does not name the file", err)
		}
	})
	t.Run("bad role names file and entry", func(t *testing.T) {
		_, err := LoadCredentialsFile("testdata/bad-role.yaml")
		if err == nil || !strings.Contains(err.Error(), "testdata/bad-role.yaml") || !strings.Contains(err.Error(), "entry 2 (line 4)") ||
			!strings.Contains(err.Error(), `role "admin"`) {
			t.Errorf("error %v", err)
		}
	})
	for _, tc := range []struct{ name, yaml, want string }{
		{"not a list", "name: x\n", "want a list"},
		{"not yaml", "- [\n", "not valid YAML"},
		{"entry not a mapping", "- just a string\n", "entry 1 (line 1): not a mapping"},
		{"unknown key", "- name: a\n  role: device\n  password: x\n", `unknown key "password"`},
		{"bad name", "- name: a/b\n  role: device\n  password_hash: \"" + h + "\"\n", `name "a/b"`},
		{"no role", "- name: a\n  password_hash: \"" + h + "\"\n", `role ""`},
		{"bad hash", "- name: a\n  role: device\n  password_hash: plain\n", "a: password_hash: not an argon2id"},
		{"duplicate", "- {name: a, role: device, password_hash: \"" + h + "\"}\n- {name: a, role: server, password_hash: \"" + h + "\"}\n", `entry 2 (line 2): name "a" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCredentials([]byte(tc.yaml), "test.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.yaml") {
				t.Errorf("error %v, want one naming test.yaml and containing %q", err, tc.want)
			}
		})
	}
	for _, empty := range []string{"", "# nothing\n", "[]\n"} {
		c, err := ParseCredentials([]byte(empty), "empty.yaml")
		if err != nil || len(c) != 0 {
			t.Errorf("ParseCredentials(%q) = %v, %v; want empty", empty, c, err)
		}
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte("- name: a\n  role: device\n  password_hash: \"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$55PWTvddWPUD1GMbKxSff4ASfF85k9ibHJt4HlHQtBM\"\n"))
	f.Add([]byte("- {name: a, role: server, password_hash: x}\n"))
	f.Add([]byte("[1, 2, {a: b}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCredentials(data, "fuzz.yaml")
		if err != nil {
			return
		}
		for name, id := range c {
			if name != id.Name || !ValidName(name) || (id.Role != RoleDevice && id.Role != RoleServer) {
				t.Fatalf("accepted bad identity %+v", id)
			}
			if _, _, _, err := ParseHash(id.PasswordHash); err != nil {
				t.Fatalf("accepted bad hash: %v", err)
			}
		}
	})
}
