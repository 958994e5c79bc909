package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// profilesFileEnv names the variable that overrides where profiles are
// read from.
const profilesFileEnv = "ATG_PROFILES_FILE"

// keyCommandTimeout bounds a profile's key_command.
const keyCommandTimeout = 30 * time.Second

// profile is one named server in the profiles file: where it is and how to
// get its API key (from a file, or from a command's output, e.g. a
// password manager).
type profile struct {
	// URL is the server's base URL (ATG_SERVICE_URL).
	URL string `json:"url"`
	// KeyFile is a file holding the API key; "~/" is the home directory,
	// and a relative path is relative to the profiles file.
	KeyFile string `json:"key_file,omitempty"`
	// KeyCommand is a shell command printing the API key on stdout.
	KeyCommand string `json:"key_command,omitempty"`
}

// profilesFile is the profiles file: {"profiles": {"name": {...}}}.
type profilesFile struct {
	Profiles map[string]profile `json:"profiles"`
}

// profilesPath returns the profiles file: $ATG_PROFILES_FILE, else
// $XDG_CONFIG_HOME/atg/profiles.json, else ~/.config/atg/profiles.json.
func profilesPath(e *env) (string, error) {
	if p := e.getenv(profilesFileEnv); p != "" {
		return p, nil
	}
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "atg", "profiles.json"), nil
	}
	home := e.getenv("HOME")
	if home == "" {
		return "", fmt.Errorf("no profiles file: set %s, XDG_CONFIG_HOME or HOME", profilesFileEnv)
	}
	return filepath.Join(home, ".config", "atg", "profiles.json"), nil
}

// loadProfile returns the server URL and API key of profile name.
func loadProfile(ctx context.Context, e *env, name string) (url, key string, err error) {
	path, err := profilesPath(e)
	if err != nil {
		return "", "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("profile %q: %w", name, err)
	}
	var f profilesFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return "", "", fmt.Errorf("profiles file %s: %w", path, err)
	}
	p, ok := f.Profiles[name]
	if !ok {
		names := make([]string, 0, len(f.Profiles))
		for n := range f.Profiles {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", "", fmt.Errorf("profile %q is not in %s (it has: %s)", name, path, strings.Join(names, ", "))
	}
	switch {
	case p.URL == "":
		return "", "", fmt.Errorf("profile %q in %s: url is required", name, path)
	case (p.KeyFile == "") == (p.KeyCommand == ""):
		return "", "", fmt.Errorf("profile %q in %s: give exactly one of key_file and key_command", name, path)
	}
	var raw []byte
	if p.KeyFile != "" {
		kf := p.KeyFile
		if rest, ok := strings.CutPrefix(kf, "~/"); ok {
			kf = filepath.Join(e.getenv("HOME"), rest)
		} else if !filepath.IsAbs(kf) {
			kf = filepath.Join(filepath.Dir(path), kf)
		}
		if raw, err = os.ReadFile(kf); err != nil {
			return "", "", fmt.Errorf("profile %q: key_file: %w", name, err)
		}
	} else {
		cctx, cancel := context.WithTimeout(ctx, keyCommandTimeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, "sh", "-c", p.KeyCommand)
		cmd.Stderr = e.stderr
		if raw, err = cmd.Output(); err != nil {
			// The command's output may hold the key: never quote it.
			return "", "", fmt.Errorf("profile %q: key_command %q failed: %w", name, p.KeyCommand, err)
		}
	}
	key = strings.TrimSpace(string(raw))
	if key == "" {
		return "", "", fmt.Errorf("profile %q: the key is empty", name)
	}
	return p.URL, key, nil
}

// errProfileAndLocal is --profile with --local.
var errProfileAndLocal = errors.New("--profile and --local exclude each other: a profile names a server")
