package main

import "github.com/spf13/cobra"

func newMountCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{Use: "mount", Hidden: true}
}
func newUnmountCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{Use: "unmount", Hidden: true}
}
