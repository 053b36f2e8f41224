package testregistry

import "syscall"

// childProcAttr makes the kernel kill the registry if the test binary dies
// without running its cleanups (a panic, a -timeout, a SIGKILL), so no
// orphaned registries accumulate on the shared machine.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
