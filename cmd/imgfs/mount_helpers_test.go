package main

import (
	"golang.org/x/sys/unix"
)

func mountReadOnlyTmpfs(dir string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "size=1m")
}

func unmountQuietly(dir string) { unix.Unmount(dir, unix.MNT_DETACH) }
