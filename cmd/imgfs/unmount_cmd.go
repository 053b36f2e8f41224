package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/fusefs"
)

func newUnmountCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "unmount <mountpoint>",
		Aliases: []string{"umount"},
		Short:   "Unmount an imgfs mount, or clear one left stale by a killed process",
		Args:    exactArgs("mountpoint"),
		RunE: func(cmd *cobra.Command, args []string) error {
			result, err := fusefs.Unmount(args[0])
			if err != nil {
				return err
			}
			switch result {
			case fusefs.DetachedStale:
				fmt.Printf("cleared stale mount %s (its imgfs process was gone)\n", args[0])
			case fusefs.DetachedBusy:
				fmt.Printf("detached %s lazily: files are still open, it goes away when they are closed\n", args[0])
			case fusefs.Unmounted:
				fmt.Printf("unmounted %s\n", args[0])
			}
			return nil
		},
	}
}
