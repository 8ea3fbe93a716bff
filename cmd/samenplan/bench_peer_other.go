//go:build !unix

package main

import (
	"os"
	"os/exec"
)

func ownProcessGroup(cmd *exec.Cmd) {}

// signalGroup ends cmd's process alone where there are no process groups.
func signalGroup(cmd *exec.Cmd, kill bool) {
	if cmd.Process == nil {
		return
	}
	if kill {
		cmd.Process.Kill()
		return
	}
	cmd.Process.Signal(os.Interrupt)
}
