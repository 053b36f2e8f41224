//go:build !linux

package testregistry

import "syscall"

// childProcAttr has no parent-death signal to set outside Linux.
func childProcAttr() *syscall.SysProcAttr { return nil }
