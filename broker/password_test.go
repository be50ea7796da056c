package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not in PHC form with the device parameters", h)
	}
	h2, _ := HashPassword("s3cret")
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		name, pw string
		want     bool
	}{
		{"right", "s3cret", true},
		{"wrong", "s3cret!", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyPassword(h, tc.pw)
			if err != nil || got != tc.want {
				t.Errorf("VerifyPassword = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// Vectors from the reference implementation (Debian package argon2), so that
// hashes made elsewhere verify here.
func TestVerifyReferenceVectors(t *testing.T) {
	for _, tc := range []struct{ name, cmd, hash string }{
		{"device parameters", "echo -n password | argon2 somesaltsomesalt -id -t 1 -k 64 -p 1 -l 32 -e",
			"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$55PWTvddWPUD1GMbKxSff4ASfF85k9ibHJt4HlHQtBM"},
		{"costlier parameters", "echo -n password | argon2 somesalt -id -t 2 -k 1024 -p 2 -l 32 -e",
			"$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHQ$kEfNQbPvk6Q7hokW6Jrvn1Mjb9kdT/I7OXVDKsviazk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ok, err := VerifyPassword(tc.hash, "password"); err != nil || !ok {
				t.Errorf("VerifyPassword(%s) = %v, %v", tc.cmd, ok, err)
			}
			if ok, _ := VerifyPassword(tc.hash, "Password"); ok {
				t.Error("a different password verified")
			}
		})
	}
}

func TestParseHashErrors(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if _, _, _, err := ParseHash(good); err != nil {
		t.Fatalf("good hash: %v", err)
	}
	for _, tc := range []struct{ name, hash, want string }{
		{"empty", "", "fields"},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "fields"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1), "not argon2id"},
		{"version", strings.Replace(good, "v=19", "v=16", 1), "version"},
		{"missing t", strings.Replace(good, "t=1,", "", 1), "once each"},
		{"repeated m", strings.Replace(good, "t=1", "m=1", 1), "once each"},
		{"unknown param", strings.Replace(good, "t=1", "x=1", 1), "unknown parameter"},
		{"not a number", strings.Replace(good, "m=64", "m=lots", 1), "name=number"},
		{"huge memory", strings.Replace(good, "m=64", "m=4000000000", 1), "KiB"},
		{"huge time", strings.Replace(good, "t=1", "t=1000", 1), "t=1000"},
		{"zero threads", strings.Replace(good, "p=1", "p=0", 1), "p=0"},
		{"bad salt", strings.Replace(good, "c29tZXNhbHRzYWx0", "!!", 1), "salt"},
		{"short salt", strings.Replace(good, "c29tZXNhbHRzYWx0", "c29t", 1), "salt of 3 bytes"},
		{"short hash", strings.Replace(good, "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "CTFh", 1), "hash of 3 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := ParseHash(tc.hash)
			if !errors.Is(err, ErrBadHash) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrBadHash containing %q", err, tc.want)
			}
			if ok, err := VerifyPassword(tc.hash, "x"); ok || err == nil {
				t.Errorf("VerifyPassword = %v, %v; want an error", ok, err)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s := NewSecret()
		if len(s) != 22 || strings.ContainsAny(s, "+/=") {
			t.Fatalf("secret %q: want 22 URL-safe characters", s)
		}
		if seen[s] {
			t.Fatalf("secret %q repeated", s)
		}
		seen[s] = true
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$$$$")
	f.Fuzz(func(t *testing.T, h string) {
		p, salt, key, err := ParseHash(h)
		if err != nil {
			return
		}
		if p.check() != nil || len(salt) != int(p.SaltLen) || len(key) != int(p.KeyLen) {
			t.Fatalf("accepted out-of-limit hash %q: %+v", h, p)
		}
	})
}

func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword(NewSecret())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = VerifyPassword(h, "not the secret")
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name, pw string
		ok       bool
		says     string // part of the message
	}{
		{"generated secret", NewSecret(), true, ""},
		{"twelve mixed characters", "kettle-Plum7", true, ""},
		{"a long passphrase", "correct horse battery staple", true, ""},
		{"non-ASCII counted as characters", "äöüßéèêëçñåø", true, ""},
		{"empty", "", false, "it is empty"},
		{"one character", "x", false, "only 1 character;"},
		{"eleven characters", "kettle-Plum", false, "only 11 characters"},
		{"one repeated character", "aaaaaaaaaaaa", false, "uses only 1 character;"},
		{"two alternating characters", "abababababab", false, "uses only 2 characters;"},
		{"trailing newline", "kettle-Plum7-x\n", false, "white space"},
		{"leading space", " kettle-Plum7-x", false, "white space"},
		{"control character", "kettle\x00Plum7-x", false, "control character"},
		{"invalid UTF-8", "kettle-Plum7\xff", false, "not valid UTF-8"},
		{"too long", strings.Repeat("abcdefghij", 103), false, "more than the 1024 allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(tc.pw)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrWeakPassword) {
				t.Fatalf("error %v, want ErrWeakPassword", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.says) {
				t.Errorf("message %q does not say %q", msg, tc.says)
			}
			if len(tc.pw) > 3 && strings.Contains(err.Error(), tc.pw) {
				t.Errorf("message %q contains the password", err)
			}
		})
	}
	for range 1000 {
		if err := CheckPassword(NewSecret()); err != nil {
			t.Fatalf("a generated secret was refused: %v", err)
		}
	}
}
