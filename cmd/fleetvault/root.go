package main

import (
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/service"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"
)

// Exit codes, documented in main.go and in the README.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitIncomplete = 3
)

// usageError marks an error in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCodeError lets a command choose its exit status with a message.
type exitCodeError struct {
	code int
	err  error
}

func (e exitCodeError) Error() string { return e.err.Error() }
func (e exitCodeError) Unwrap() error { return e.err }

// app carries what every command shares: configuration, output streams, logger.
type app struct {
	v      *viper.Viper
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// run builds the command tree, executes it and maps the outcome to an exit code.
func run(args []string, stdout, stderr io.Writer) int {
	a := &app{v: viper.New(), stdout: stdout, stderr: stderr}
	root := newRootCommand(a)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "fleetvault: %s\n", err)
	var ec exitCodeError
	var ue usageError
	switch {
	case errors.As(err, &ec):
		return ec.code
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitError
}

// typedUsageErrors makes cobra's own usage errors usageErrors, so that run
// recognises them by type: every command's argument check is wrapped, the
// root refuses unknown commands itself (cobra would return plain text), and
// required flags are checked before the command runs (checkRequiredFlags,
// from the root's PersistentPreRunE). Flag parse errors go through the root's
// FlagErrorFunc.
func typedUsageErrors(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		typedUsageErrors(sub)
	}
}

// rootArgs refuses what is not a command, as cobra's would, but typed.
func rootArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := commandSuggestion(cmd, args[0])
	if hint == "" {
		hint = "; see fleetvault --help"
	}
	return usageError{fmt.Errorf("unknown command %q for %q%s", args[0], cmd.CommandPath(), hint)}
}

func commandSuggestion(cmd *cobra.Command, name string) string {
	var names []string
	for _, c := range cmd.Commands() {
		names = append(names, c.Name())
	}
	return service.Suggest(name, names)
}

// checkRequiredFlags refuses a command run without a flag it requires
// (cobra.Command.MarkFlagRequired).
func checkRequiredFlags(cmd *cobra.Command) error {
	var missing []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if req, ok := f.Annotations[cobra.BashCompOneRequiredFlag]; ok && len(req) > 0 && req[0] == "true" && !f.Changed {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		return usageError{fmt.Errorf("%s: required flag(s) %s not given", cmd.CommandPath(), strings.Join(missing, ", "))}
	}
	return nil
}

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "fleetvault",
		Short: "Back up and group-restore the settings of IoT device fleets",
		Long: `Fleetvault backs up the settings of IoT devices together with each device's tag,
and restores them to whole groups of devices at once: each target device is
probed for its tag, the tag is matched against the backed-up tags, and the
matching settings are written and verified.

Configuration comes from flags, then FLEETVAULT_* environment variables
(FLEETVAULT_MBR for --mbr, FLEETVAULT_BROKER_URL for broker.url), then the
file named by --config (default: ./fleetvault.yaml if it exists).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          rootArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkRequiredFlags(cmd); err != nil {
				return err
			}
			return a.setup(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.String("config", "", "configuration file (YAML); default ./fleetvault.yaml if present")
	pf.String("mbr", "", "master backup record of the installation to use (config: mbr)")
	pf.String("log-level", "info", "log level: debug, info, warn or error (config: log.level)")
	pf.String("password-file", "", "file holding the passphrase of an encrypted installation (env FLEETVAULT_PASSWORD_FILE; or set FLEETVAULT_PASSWORD)")
	pf.String("log-format", "auto", "log format: text, json, or auto (text on a terminal) (config: log.format)")

	for _, c := range commands(a) {
		root.AddCommand(c)
	}
	typedUsageErrors(root)
	return root
}

// setup loads configuration in precedence order: flags, environment, file.
func (a *app) setup(cmd *cobra.Command) error {
	v := a.v
	v.SetEnvPrefix("FLEETVAULT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	bind := func(key, flag string) {
		if f := cmd.Flags().Lookup(flag); f != nil {
			_ = v.BindPFlag(key, f)
		}
	}
	bind("mbr", "mbr")
	bind("log.level", "log-level")
	bind("log.format", "log-format")
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if v.IsSet(f.Name) || f.Name == "config" {
			return
		}
		_ = v.BindPFlag(f.Name, f)
	})

	cfg, _ := cmd.Flags().GetString("config")
	if cfg == "" {
		cfg = os.Getenv("FLEETVAULT_CONFIG")
	}
	explicit := cfg != ""
	if !explicit {
		if _, err := os.Stat("fleetvault.yaml"); err == nil {
			cfg = "fleetvault.yaml"
		}
	}
	if cfg != "" {
		v.SetConfigFile(cfg)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("configuration file %s: %v", cfg, err)
		}
	}

	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(v.GetString("log.level"))); err != nil {
		return configError(cfg, "log.level", fmt.Errorf("%q is not one of debug, info, warn, error", v.GetString("log.level")))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format := v.GetString("log.format"); format {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	case "auto", "":
		if isTerminal(a.stderr) {
			a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
		} else {
			a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
		}
	default:
		return configError(cfg, "log.format", fmt.Errorf("%q is not one of text, json, auto", format))
	}
	return nil
}

// configError names the key and the file a bad setting came from.
func configError(file, key string, err error) error {
	if file == "" {
		return fmt.Errorf("configuration key %s: %w", key, err)
	}
	return fmt.Errorf("configuration key %s (from flags, environment or %s): %w", key, file, err)
}

// isTerminal reports whether w is a terminal, for choosing human output.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
