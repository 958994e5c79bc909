//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detachSignals puts the spawned server in its own process group, so that a
// Ctrl-C in the terminal reaches atg-load only: atg-load then cleans up
// through the server and stops it by closing its stdin.
func detachSignals(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
