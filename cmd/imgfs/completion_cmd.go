package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newCompletionCommand replaces cobra's default completion command, which
// prints its help and exits 0 for an unknown shell, with one that takes
// the shell as its argument and refuses others with the usage exit code.
// The scripts are cobra's own.
func newCompletionCommand() *cobra.Command {
	shells := []string{"bash", "zsh", "fish"}
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Completion prints a completion script for the given shell. For example:

  imgfs completion bash > /etc/bash_completion.d/imgfs
  imgfs completion zsh > "${fpath[1]}/_imgfs"
  imgfs completion fish > ~/.config/fish/completions/imgfs.fish`,
		ValidArgs: shells,
		Args:      exactArgs("shell"),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, w := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			case "fish":
				return root.GenFishCompletion(w, true)
			}
			return usageError{fmt.Errorf("completion: unknown shell %q: want one of %v", args[0], shells)}
		},
	}
}
