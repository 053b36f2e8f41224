package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the imgfs version, the Go version it was built with, and its commit",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), versionText())
			return nil
		},
	}
}

// versionText describes the build from what the Go toolchain recorded in
// the binary: the module version ("(devel)" for a build from a checkout),
// the Go version, and the VCS commit when built inside a repository.
func versionText() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "imgfs (no build information)\n"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	out := fmt.Sprintf("imgfs %s\ngo: %s\n", version, info.GoVersion)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		out += "commit: " + rev + "\n"
	}
	if t := settings["vcs.time"]; t != "" {
		out += "commit time: " + t + "\n"
	}
	return out
}
