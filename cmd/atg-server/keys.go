package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
)

// keysFileEnv names the environment variable giving the default keys file.
const keysFileEnv = "ATG_KEYS_FILE"

// keysLong is the help of "atg-server keys".
const keysLong = `Manages API keys in the keys file.

--file defaults to $ATG_KEYS_FILE. Durations take Go syntax (90m, 720h) or
whole days (30d). A running server sees changes after SIGHUP or a restart.
Each change is one JSON audit record written to ATG_AUDIT_LOG (standard
error, after the command's own messages, when unset).`

// newKeysCommand returns "atg-server keys" and its subcommands.
func newKeysCommand(ctx context.Context, e *env) *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys <subcommand> [flags]",
		Short: "manage API keys in the keys file (create, list, revoke, rotate)",
		Long:  keysLong,
	}
	keys.RunE = runE(func(cmd *cobra.Command, args []string) int {
		switch {
		case len(args) == 0:
			cmd.SetOut(e.stderr)
			_ = cmd.Usage()
			return exitUsage
		case args[0] == "help":
			_ = cmd.Help()
			return exitOK
		}
		fmt.Fprintf(e.stderr, "atg-server keys: unknown subcommand %q: want create, list, revoke or rotate\n", args[0])
		fmt.Fprintln(e.stderr, `Run "atg-server keys -h" for usage.`)
		return exitUsage
	})
	keys.AddCommand(keysCreateCommand(ctx, e), keysListCommand(ctx, e), keysRevokeCommand(ctx, e), keysRotateCommand(ctx, e))
	return keys
}

// keysCmd holds what every keys subcommand shares: its name and the
// --file flag.
type keysCmd struct {
	e    *env
	name string // e.g. "keys create"
	file string
	// pending is the audit record of the change, written last.
	pending *audit.Record
}

// newKeysCmd returns the cobra command of keys subcommand name, with a
// keysCmd bound to its --file flag; run does the work with it and the
// positional arguments, and the change's audit record is written after.
func newKeysCmd(e *env, name, args, short, long string, nargs int, run func(c *keysCmd, pos []string) int) *cobra.Command {
	c := &keysCmd{e: e, name: "keys " + name}
	cmd := &cobra.Command{
		Use:   name + " " + args,
		Short: short,
		Long:  long,
		Args:  keyArgs(nargs),
	}
	cmd.RunE = runE(func(_ *cobra.Command, pos []string) int {
		code := run(c, pos)
		c.writeAudit() // after the command's messages
		return code
	})
	cmd.Flags().StringVar(&c.file, "file", "", "keys file (default $"+keysFileEnv+")")
	return cmd
}

// keyArgs checks that a keys subcommand has want positional arguments (0,
// or 1 for a key ID).
func keyArgs(want int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) == want:
			return nil
		case want == 0:
			return fmt.Errorf("unexpected argument %q", args[0])
		case len(args) == 0:
			return errors.New(`missing key ID (see "atg-server keys list")`)
		}
		return fmt.Errorf("expected one key ID, got %d arguments", len(args))
	}
}

// usageError prints a usage error; the caller returns exitUsage.
func (c *keysCmd) usageError(format string, args ...any) {
	fmt.Fprintf(c.e.stderr, "atg-server %s: %s\n", c.name, fmt.Sprintf(format, args...))
	fmt.Fprintf(c.e.stderr, "Run \"atg-server %s -h\" for usage.\n", c.name)
}

// fail prints a failure and returns its exit status: exitUsage for invalid
// input, exitFailure otherwise.
func (c *keysCmd) fail(err error) int {
	fmt.Fprintf(c.e.stderr, "atg-server %s: %v\n", c.name, err)
	if errors.Is(err, auth.ErrInvalidRecord) || errors.Is(err, auth.ErrInvalidScope) || errors.Is(err, auth.ErrInvalidEnvironment) {
		return exitUsage
	}
	return exitFailure
}

// open opens the keys file named by --file or $ATG_KEYS_FILE.
func (c *keysCmd) open(ctx context.Context) (*auth.FileStore, int, bool) {
	path := c.file
	if path == "" {
		path = c.e.getenv(keysFileEnv)
	}
	if path == "" {
		c.usageError("no keys file: pass --file or set %s", keysFileEnv)
		return nil, exitUsage, false
	}
	s, err := auth.OpenFileStore(ctx, path, auth.FileStoreOptions{Now: c.e.now})
	if err != nil {
		return nil, c.fail(err), false
	}
	c.file = s.Path()
	return s, 0, true
}

// close closes s, reporting an error (exit status 1) if it fails.
func (c *keysCmd) close(s *auth.FileStore, code int) int {
	if err := s.Close(); err != nil {
		fmt.Fprintf(c.e.stderr, "atg-server %s: %v\n", c.name, err)
		if code == exitOK {
			return exitFailure
		}
	}
	return code
}

// durationFlag is a time.Duration flag that also accepts whole days ("30d").
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "0"
	}
	return f.d.String()
}

// Type implements pflag.Value.
func (durationFlag) Type() string { return "duration" }

// Set implements flag.Value.
func (f durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// maxKeyDuration bounds --expires-in and --grace: 100 years of days.
const maxKeyDuration = 36600 * 24 * time.Hour

// goDuration matches the syntax of time.ParseDuration, so that a value it
// refuses although it is well formed can be reported as too long rather
// than as malformed.
var goDuration = regexp.MustCompile(`^\+?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)

// parseDuration parses a Go duration ("90m", "720h") or whole days ("30d"),
// from 0 to 36600d (100 years). Negative, malformed and longer values are
// errors, each saying which.
func parseDuration(s string) (time.Duration, error) {
	tooLong := fmt.Errorf("invalid duration %q: too long, the most is 36600d (100 years)", s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		var ne *strconv.NumError
		switch {
		case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) && !strings.HasPrefix(days, "-"):
			return 0, tooLong
		case err != nil:
			return 0, fmt.Errorf("invalid duration %q: use e.g. 30d, 720h or 90m", s)
		case n < 0:
			return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
		case n > 36600:
			return 0, tooLong
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			if goDuration.MatchString(s) {
				return 0, tooLong
			}
			if strings.HasPrefix(s, "-") && goDuration.MatchString(s[1:]) {
				return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
			}
			return 0, fmt.Errorf("invalid duration %q: use e.g. 30d, 720h or 90m", s)
		}
	}
	switch {
	case d < 0:
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	case d > maxKeyDuration:
		return 0, tooLong
	}
	return d, nil
}

// expiryFlag is the --expires-in flag of keys create: a positive duration
// (as parseDuration reads it) or "never". Zero is refused, since a key that
// expires at once is useless and taking 0 for "never" hides a mistake.
type expiryFlag struct{ d *time.Duration }

func (f expiryFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "never"
	}
	return f.d.String()
}

// Type implements pflag.Value.
func (expiryFlag) Type() string { return "duration" }

// Set implements flag.Value.
func (f expiryFlag) Set(s string) error {
	if s == "never" {
		*f.d = 0
		return nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	if d == 0 {
		return fmt.Errorf("invalid duration %q: a key must live longer than 0; omit --expires-in or pass --expires-in never for a key that never expires", s)
	}
	*f.d = d
	return nil
}

// keyOutput is the --json output of create and rotate.
type keyOutput struct {
	Key    string      `json:"key"`
	Record auth.Record `json:"record"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printKey prints a new key: alone on a line of stdout, or as JSON with its
// record.
func (c *keysCmd) printKey(key string, rec auth.Record, asJSON bool) error {
	if asJSON {
		return writeJSON(c.e.stdout, keyOutput{Key: key, Record: rec})
	}
	_, err := fmt.Fprintln(c.e.stdout, key)
	return err
}

// audit records one audit record of a key change, to be written to
// ATG_AUDIT_LOG by writeAudit once the command has printed its messages
// (so that, on standard error, the record comes after them rather than
// between them), with the operator's OS user as the client and the time
// of the change.
func (c *keysCmd) audit(event, outcome string, details map[string]any) {
	details["keys_file"] = c.file
	c.pending = &audit.Record{Time: c.e.now(), Event: event, ClientID: "cli:" + operator(), Outcome: outcome, Details: details}
}

// writeAudit writes the record audit kept, if any, to ATG_AUDIT_LOG
// (standard error when unset; "stdout" too goes to standard error, which
// must not mix with the key printed on standard output).
func (c *keysCmd) writeAudit() {
	if c.pending == nil {
		return
	}
	rec := *c.pending
	c.pending = nil
	l, err := audit.Open(strings.TrimSpace(c.e.getenv("ATG_AUDIT_LOG")), c.e.stderr, c.e.stderr)
	if err != nil {
		fmt.Fprintf(c.e.stderr, "atg-server %s: audit log: %v\n", c.name, err)
		return
	}
	defer l.Close()
	l.Log(rec)
}

// operator names who runs the command, for the audit trail.
func operator() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// keysCreateCommand returns "atg-server keys create".
func keysCreateCommand(ctx context.Context, e *env) *cobra.Command {
	var (
		envName, clientID, scopes string
		expiresIn                 time.Duration
		asJSON                    bool
	)
	cmd := newKeysCmd(e, "create", "--env E --client-id C [--scopes read,write] [--expires-in 720h] [--json] [--file F]",
		"create a key; prints the key once on stdout (store it now)", "Creates a key and prints it once on standard output: store it now.", 0,
		func(c *keysCmd, _ []string) int {
			return c.create(ctx, envName, clientID, scopes, expiresIn, asJSON)
		})
	f := cmd.Flags()
	f.StringVar(&envName, "env", "", "environment of the key: dev, integration or production (required)")
	f.StringVar(&clientID, "client-id", "", "client the key is issued to: 1-128 of A-Z a-z 0-9 . _ @ : - (required)")
	f.StringVar(&scopes, "scopes", "read,write", "comma-separated scopes: read, write, admin (admin implies all)")
	f.Var(expiryFlag{&expiresIn}, "expires-in", "`duration` the key is valid, e.g. 720h or 30d (at most 36600d), or never")
	f.BoolVar(&asJSON, "json", false, `print {"key":…,"record":…} as JSON instead of the bare key`)
	return cmd
}

// create implements "atg-server keys create".
func (c *keysCmd) create(ctx context.Context, envName, clientID, scopes string, expiresIn time.Duration, asJSON bool) int {
	e := c.e
	if envName == "" || clientID == "" {
		c.usageError("--env and --client-id are required")
		return exitUsage
	}
	environment, err := auth.ParseEnvironment(envName)
	if err != nil {
		c.usageError("--env: %v", err)
		return exitUsage
	}
	sc, err := auth.ParseScopes(scopes)
	if err != nil {
		c.usageError("--scopes: %v", err)
		return exitUsage
	}
	s, code, ok := c.open(ctx)
	if !ok {
		return code
	}
	key, rec, err := s.Create(ctx, auth.CreateOptions{ClientID: clientID, Environment: environment, Scopes: sc, TTL: expiresIn})
	if err != nil {
		c.audit(audit.EventKeyCreate, "failed", map[string]any{"for_client_id": clientID, "error": err.Error()})
		return c.close(s, c.fail(err))
	}
	c.audit(audit.EventKeyCreate, "created", map[string]any{"key_id": rec.ID, "for_client_id": rec.ClientID,
		"environment": rec.Environment, "scopes": auth.FormatScopes(rec.Scopes)})
	if err := c.printKey(key, rec, asJSON); err != nil {
		return c.close(s, c.fail(err))
	}
	fmt.Fprintf(e.stderr, "Created key %s for client %s (environment %s, scopes %s, expires %s) in %s.\n",
		rec.ID, rec.ClientID, rec.Environment, auth.FormatScopes(rec.Scopes), formatTime(rec.ExpiresAt, "never"), s.Path())
	fmt.Fprintln(e.stderr, "Store the key now: it is shown only once. A running server sees it after SIGHUP or a restart.")
	return c.close(s, exitOK)
}

// keysListCommand returns "atg-server keys list".
func keysListCommand(ctx context.Context, e *env) *cobra.Command {
	var asJSON bool
	cmd := newKeysCmd(e, "list", "[--json] [--file F]", "list key records (never keys or digests)",
		"Lists the key records, oldest first: never the keys or their digests.", 0,
		func(c *keysCmd, _ []string) int { return c.list(ctx, asJSON) })
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the records as a JSON array")
	return cmd
}

// list implements "atg-server keys list".
func (c *keysCmd) list(ctx context.Context, asJSON bool) int {
	e := c.e
	s, code, ok := c.open(ctx)
	if !ok {
		return code
	}
	recs, err := s.List(ctx)
	if err != nil {
		return c.close(s, c.fail(err))
	}
	if asJSON {
		if recs == nil {
			recs = []auth.Record{}
		}
		if err := writeJSON(e.stdout, recs); err != nil {
			return c.close(s, c.fail(err))
		}
		return c.close(s, exitOK)
	}
	if len(recs) == 0 {
		fmt.Fprintf(e.stderr, "No keys in %s.\n", s.Path())
		return c.close(s, exitOK)
	}
	now := e.now()
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLIENT\tENVIRONMENT\tSCOPES\tSTATUS\tCREATED\tEXPIRES\tLAST USED")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.ClientID, r.Environment, auth.FormatScopes(r.Scopes),
			r.Status(now), formatTime(&r.CreatedAt, "-"), formatTime(r.ExpiresAt, "never"), formatTime(r.LastUsedAt, "never"))
	}
	if err := tw.Flush(); err != nil {
		return c.close(s, c.fail(err))
	}
	return c.close(s, exitOK)
}

// keysRevokeCommand returns "atg-server keys revoke".
func keysRevokeCommand(ctx context.Context, e *env) *cobra.Command {
	cmd := newKeysCmd(e, "revoke", "ID [--file F]", "revoke a key at once",
		"Revokes a key at once.", 1,
		func(c *keysCmd, pos []string) int { return c.revoke(ctx, pos[0]) })
	return cmd
}

// revoke implements "atg-server keys revoke".
func (c *keysCmd) revoke(ctx context.Context, id string) int {
	e := c.e
	s, code, ok := c.open(ctx)
	if !ok {
		return code
	}
	rec, err := s.Revoke(ctx, id)
	if err != nil {
		c.audit(audit.EventKeyRevoke, "failed", map[string]any{"key_id": id, "error": err.Error()})
		return c.close(s, c.fail(err))
	}
	c.audit(audit.EventKeyRevoke, "revoked", map[string]any{"key_id": rec.ID, "for_client_id": rec.ClientID})
	fmt.Fprintf(e.stdout, "Revoked key %s (client %s) at %s.\n", rec.ID, rec.ClientID, formatTime(rec.RevokedAt, "-"))
	fmt.Fprintln(e.stderr, "A running server sees the change after SIGHUP or a restart.")
	return c.close(s, exitOK)
}

// keysRotateCommand returns "atg-server keys rotate".
func keysRotateCommand(ctx context.Context, e *env) *cobra.Command {
	grace := 24 * time.Hour
	var asJSON bool
	cmd := newKeysCmd(e, "rotate", "ID [--grace 24h] [--json] [--file F]",
		"replace a key: a new one for the same client and scopes; the old one works for --grace",
		`Creates a new key for the same client, environment and scopes and lets the
old one work for the grace period; prints the new key once.`, 1,
		func(c *keysCmd, pos []string) int { return c.rotate(ctx, pos[0], grace, asJSON) })
	cmd.Flags().Var(durationFlag{&grace}, "grace", "`duration` the old key keeps working, e.g. 24h or 7d; 0 ends it now")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"key":…,"record":…} as JSON instead of the bare key`)
	return cmd
}

// rotate implements "atg-server keys rotate".
func (c *keysCmd) rotate(ctx context.Context, id string, grace time.Duration, asJSON bool) int {
	e := c.e
	s, code, ok := c.open(ctx)
	if !ok {
		return code
	}
	key, rec, err := s.Rotate(ctx, id, grace)
	if err != nil {
		c.audit(audit.EventKeyRotate, "failed", map[string]any{"key_id": id, "error": err.Error()})
		return c.close(s, c.fail(err))
	}
	c.audit(audit.EventKeyRotate, "rotated", map[string]any{"key_id": id, "new_key_id": rec.ID, "for_client_id": rec.ClientID,
		"grace_seconds": grace.Seconds()})
	if err := c.printKey(key, rec, asJSON); err != nil {
		return c.close(s, c.fail(err))
	}
	oldEnd := "-"
	if recs, err := s.List(ctx); err == nil {
		for _, r := range recs {
			if r.ID == id {
				oldEnd = formatTime(r.ExpiresAt, "never")
			}
		}
	}
	fmt.Fprintf(e.stderr, "Rotated key %s: new key %s for client %s (environment %s, scopes %s, expires %s); the old key stops working after %s.\n",
		id, rec.ID, rec.ClientID, rec.Environment, auth.FormatScopes(rec.Scopes), formatTime(rec.ExpiresAt, "never"), oldEnd)
	fmt.Fprintln(e.stderr, "Store the key now: it is shown only once. A running server sees it after SIGHUP or a restart.")
	return c.close(s, exitOK)
}

// formatTime formats t as RFC 3339 UTC to the second, or returns none when t
// is nil.
func formatTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}
