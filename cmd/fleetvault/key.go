package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

const passphraseHelp = `
The passphrase comes from --password-file FILE (or FLEETVAULT_PASSWORD_FILE),
else FLEETVAULT_PASSWORD, else a prompt when standard input is a terminal.`

// kdfFlag is the flag that sets argon2id's memory for new key files and
// encrypted exports.
const kdfFlag = "kdf-memory-mib"

func addKDFFlag(f interface {
	Int(name string, value int, usage string) *int
}) {
	f.Int(kdfFlag, int(repokey.DefaultParams().MemoryKiB>>10), "argon2id memory in MiB for a new passphrase (less is weaker against guessing; for small hosts)")
}

// kdfParams are the argon2id parameters for a new passphrase.
func kdfParams(a *app) repokey.Params {
	p := repokey.DefaultParams()
	if m := a.v.GetInt(kdfFlag); m > 0 {
		p.MemoryKiB = uint32(min(m, 1<<10)) << 10 // repokey refuses more than 1 GiB
	}
	return p
}

// passphrase reads the installation's passphrase the way restic does:
// --password-file (FLEETVAULT_PASSWORD_FILE), FLEETVAULT_PASSWORD, or a
// prompt on a terminal.
func passphrase(a *app, what string) ([]byte, error) {
	if f := a.v.GetString("password-file"); f != "" {
		return readPassphraseFile(f)
	}
	if p := os.Getenv("FLEETVAULT_PASSWORD"); p != "" {
		return []byte(p), nil
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		return promptPassphrase(a, "passphrase for "+what)
	}
	return nil, usageError{fmt.Errorf("%s: give its passphrase with --password-file FILE, FLEETVAULT_PASSWORD_FILE or FLEETVAULT_PASSWORD, or run on a terminal to type it", what)}
}

// newPassphrase reads a passphrase to set: --new-password-file, else a
// prompt (twice) on a terminal.
func newPassphrase(a *app) ([]byte, error) {
	if f := a.v.GetString("new-password-file"); f != "" {
		return readPassphraseFile(f)
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, usageError{errors.New("give the new passphrase with --new-password-file FILE, or run on a terminal to type it")}
	}
	p, err := promptPassphrase(a, "new passphrase")
	if err != nil {
		return nil, err
	}
	again, err := promptPassphrase(a, "the new passphrase again")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p, again) {
		return nil, errors.New("the two passphrases differ; nothing changed")
	}
	return p, nil
}

func readPassphraseFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the passphrase: %w", err)
	}
	data = bytes.TrimRight(data, "\r\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("the passphrase file %s is empty", path)
	}
	return data, nil
}

func promptPassphrase(a *app, prompt string) ([]byte, error) {
	fmt.Fprintf(a.stderr, "enter %s: ", prompt)
	p, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, fmt.Errorf("read the passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("an empty passphrase is not allowed")
	}
	return p, nil
}

// installKey returns the repository key of the installation at mbr, or nil
// when it is in clear. The passphrase is asked only for an encrypted one.
func installKey(a *app, mbr string) (*repokey.Key, error) {
	k, _, err := openInstallKey(a, mbr)
	return k, err
}

func openInstallKey(a *app, mbr string) (*repokey.Key, repokey.Info, error) {
	m, err := catalog.ReadMBR(mbr)
	if err != nil || m.Keys == "" {
		return nil, repokey.Info{}, err
	}
	dir := m.Path(m.Keys)
	pass, err := passphrase(a, "installation "+mbr+" (encrypted)")
	if err != nil {
		return nil, repokey.Info{}, err
	}
	k, info, err := repokey.Open(dir, pass)
	if errors.Is(err, repokey.ErrWrongPassphrase) {
		return nil, info, fmt.Errorf("wrong passphrase: it opens no key file in %s (nothing was changed)", dir)
	}
	return k, info, err
}

func newKeyCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Manage the passphrases (key files) of an encrypted installation",
		Long: `key manages the key files of the installation named by --mbr. Settings
content and resource records are encrypted with a random repository key; each
key file holds that key wrapped by one passphrase (argon2id), so any of the
passphrases opens the installation. Lose all of them and the backups are lost.
` + passphraseHelp + `
New passphrases come from --new-password-file FILE or a prompt.`,
		Args: cobra.NoArgs,
	}
	c.PersistentFlags().String("new-password-file", "", "file holding the new passphrase (key init, add, passwd, rotate)")
	addKDFFlag(c.PersistentFlags())
	c.AddCommand(
		&cobra.Command{Use: "init", Short: "Encrypt an installation that is in clear (rewrites every file; stop the server first)", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return runKeyInit(a) }},
		&cobra.Command{Use: "list", Short: "List the key files (no passphrase needed)", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return runKeyList(a) }},
		&cobra.Command{Use: "add", Short: "Add a passphrase (a new key file)", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return runKeyAdd(a) }},
		&cobra.Command{Use: "remove ID", Short: "Remove a key file (not the one your passphrase opens, not the last)", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error { return runKeyRemove(a, args[0]) }},
		&cobra.Command{Use: "passwd", Short: "Change the passphrase given (replaces its key file)", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return runKeyPasswd(a) }},
		&cobra.Command{Use: "rotate", Short: "Re-encrypt everything under a new repository key (stop the server first)",
			Long: `rotate draws a new repository key, re-encrypts every settings payload and
resource record with it, compacts every file so no old ciphertext stays, and
replaces the key files: the new key is wrapped by the new passphrase (or, with
no --new-password-file and no terminal, by the current one), and every key file
of the old key is removed; add the other passphrases again with key add. Use it
when a passphrase or key file may have leaked: a copy of the old files stays
readable with the old key, new data is not.` + passphraseHelp,
			Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return runKeyRotate(a) }},
	)
	return c
}

// keyDir returns the installation's keys directory, or an error if it is in clear.
func keyDir(mbr string) (string, error) {
	m, err := catalog.ReadMBR(mbr)
	if err != nil {
		return "", err
	}
	if m.Keys == "" {
		return "", fmt.Errorf("installation %s is not encrypted: encrypt it with fleetvault key init", mbr)
	}
	return m.Path(m.Keys), nil
}

func runKeyInit(a *app) error {
	mbr, err := mbrPath(a)
	if err != nil {
		return err
	}
	m, err := catalog.ReadMBR(mbr)
	if err != nil {
		return err
	}
	if m.Keys != "" {
		return fmt.Errorf("installation %s is already encrypted (key files in %s)", mbr, m.Path(m.Keys))
	}
	pass, err := newPassphraseOrCurrent(a)
	if err != nil {
		return err
	}
	dir := filepath.Join(m.Dir(), "keys")
	k, info, err := repokey.Create(dir, pass, kdfParams(a))
	if err != nil {
		return err
	}
	if err := catalog.Rekey(mbr, nil, k, dir); err != nil {
		return fmt.Errorf("key init: %w (the installation may be partly encrypted: restore your copy of it)", err)
	}
	fmt.Fprintf(a.stdout, "encrypted %s; key file %s in %s\nkeep the passphrase safe: without it the backups cannot be read\n", mbr, info.ID, dir)
	return nil
}

// newPassphraseOrCurrent is the passphrase to set: --new-password-file, or
// the one the usual sources give (so key init works like init).
func newPassphraseOrCurrent(a *app) ([]byte, error) {
	if a.v.GetString("new-password-file") != "" || term.IsTerminal(int(os.Stdin.Fd())) {
		return newPassphrase(a)
	}
	return passphrase(a, "the new key")
}

func runKeyList(a *app) error {
	mbr, err := mbrPath(a)
	if err != nil {
		return err
	}
	dir, err := keyDir(mbr)
	if err != nil {
		return err
	}
	infos, err := repokey.List(dir)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tHOST\tUSER\tREPOSITORY KEY")
	for _, in := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", in.ID, in.Created.Format("2006-01-02 15:04:05Z"), in.Hostname, in.Username, in.KeyID)
	}
	return tw.Flush()
}

// keyring is an encrypted installation opened with a passphrase: its MBR,
// keys directory, repository key and the key file the passphrase opened.
type keyring struct {
	mbr, dir string
	key      *repokey.Key
	cur      repokey.Info
}

func openKeyring(a *app) (keyring, error) {
	var kr keyring
	var err error
	if kr.mbr, err = mbrPath(a); err != nil {
		return kr, err
	}
	if kr.dir, err = keyDir(kr.mbr); err != nil {
		return kr, err
	}
	kr.key, kr.cur, err = openInstallKey(a, kr.mbr)
	return kr, err
}

// addPassphrase opens the keyring and adds a key file for a new passphrase.
func addPassphrase(a *app) (keyring, repokey.Info, error) {
	kr, err := openKeyring(a)
	if err != nil {
		return kr, repokey.Info{}, err
	}
	pass, err := newPassphrase(a)
	if err != nil {
		return kr, repokey.Info{}, err
	}
	info, err := repokey.Add(kr.dir, kr.key, pass, kdfParams(a))
	return kr, info, err
}

func runKeyAdd(a *app) error {
	_, info, err := addPassphrase(a)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "added key file %s\n", info.ID)
	return nil
}

func runKeyRemove(a *app, id string) error {
	kr, err := openKeyring(a)
	if err != nil {
		return err
	}
	if kr.cur.ID == id {
		return fmt.Errorf("key %s is the one your passphrase opens: remove it with another passphrase, or change it with key passwd", id)
	}
	if err := repokey.Remove(kr.dir, id); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "removed key file %s\n", id)
	return nil
}

func runKeyPasswd(a *app) error {
	kr, info, err := addPassphrase(a)
	if err != nil {
		return err
	}
	if err := repokey.Remove(kr.dir, kr.cur.ID); err != nil {
		return fmt.Errorf("added key file %s with the new passphrase but could not remove the old one: %w", info.ID, err)
	}
	fmt.Fprintf(a.stdout, "changed the passphrase: key file %s replaces %s\n", info.ID, kr.cur.ID)
	return nil
}

func runKeyRotate(a *app) error {
	kr, err := openKeyring(a)
	if err != nil {
		return err
	}
	mbr, dir, old := kr.mbr, kr.dir, kr.key
	pass, err := newPassphraseOrCurrent(a)
	if err != nil {
		return err
	}
	k, err := repokey.New()
	if err != nil {
		return err
	}
	info, err := repokey.Add(dir, k, pass, kdfParams(a))
	if err != nil {
		return err
	}
	if err := catalog.Rekey(mbr, old, k, dir); err != nil {
		return fmt.Errorf("key rotate: %w (the installation may be partly re-encrypted: restore your copy of it)", err)
	}
	n, err := repokey.RemoveKey(dir, old.ID())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "rotated the repository key %s -> %s; key file %s; removed %d key file(s) of the old key\n", old.ID(), k.ID(), info.ID, n)
	return nil
}
