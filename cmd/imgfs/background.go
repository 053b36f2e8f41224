package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// A background mount re-runs imgfs as a detached child that reports over a
// pipe (fd 3) whether the mount came up, so the parent can exit 0 only once
// the mount is ready, or non-zero with the child's reason.
const (
	backgroundEnv = "IMGFS_BACKGROUND_CHILD"
	readyFD       = 3
)

func isBackgroundChild() bool { return os.Getenv(backgroundEnv) == "1" }

// startBackground starts the child that serves the mount and waits until it
// reports. The child gets the parent's flags, except that the password, if
// any, goes through a pipe (passwordFD) and never onto its command line.
func startBackground(cmd *cobra.Command, g *globalFlags, f *mountFlags) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	user, password, err := f.credentials(os.Stdin)
	if err != nil {
		return err
	}
	logFile := f.logFile
	if logFile == "" {
		dir, err := g.cacheRoot()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
			return fmt.Errorf("log directory: %w", err)
		}
		pruneOldLogs(dir)
		logFile = filepath.Join(dir, "logs", "mount-"+strconv.Itoa(os.Getpid())+".log")
	}
	abs, _ := filepath.Abs(logFile)

	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	child := exec.Command(exe, childArgs(cmd, user, abs)...)
	child.Env = append(os.Environ(), backgroundEnv+"=1")
	child.ExtraFiles = []*os.File{w} // fd 3
	if user != "" {
		pr, pw, err := os.Pipe()
		if err != nil {
			w.Close()
			return err
		}
		// The pipe holds far more than maxPasswordSize, so the write
		// completes before the child runs.
		_, err = io.WriteString(pw, password)
		pw.Close()
		if err != nil {
			pr.Close()
			w.Close()
			return fmt.Errorf("hand the password to the background mount: %w", err)
		}
		defer pr.Close()
		child.ExtraFiles = append(child.ExtraFiles, pr) // fd 4
		child.Env = append(child.Env, passwordFDEnv+"="+strconv.Itoa(passwordFD))
	}
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start background mount: %w", err)
	}
	w.Close()
	reports := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		reports <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-reports:
	case <-cmd.Context().Done():
	}
	if cmd.Context().Err() != nil {
		// Interrupted: the child runs in a session of its own, so the
		// terminal's signal never reached it. Stop it, and with it a
		// mount it may have made, rather than leave one the user
		// thinks was called off.
		return stopBackgroundChild(child, abs)
	}
	if line == "ok" {
		fmt.Printf("mounted in the background (pid %d, log %s)\n", child.Process.Pid, abs)
		child.Process.Release()
		return nil
	}
	child.Wait()
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return errors.New(msg)
	}
	return fmt.Errorf("background mount exited before it was ready; see %s", abs)
}

// childStopGrace is how long an interrupted parent gives the background
// child to stop (and unmount, if it had mounted) before killing it.
const childStopGrace = 10 * time.Second

// stopBackgroundChild asks the child to stop with SIGTERM, as `imgfs
// unmount` would, waits for it to exit, and kills it if it outlives
// childStopGrace.
func stopBackgroundChild(child *exec.Cmd, logFile string) error {
	child.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() {
		child.Wait()
		close(exited)
	}()
	select {
	case <-exited:
		return fmt.Errorf("the background mount was stopped before it was ready; its log is %s", logFile)
	case <-time.After(childStopGrace):
	}
	child.Process.Kill()
	<-exited
	return fmt.Errorf("the background mount did not stop within %s and was killed; if the mountpoint is left behind, run imgfs unmount on it; its log is %s", childStopGrace, logFile)
}

// childArgs rebuilds the command line for the background child from the
// flags as parsed, so that nothing depends on how the user spelled them.
// --user keeps only the name and --password-stdin is dropped: the child
// reads the password from its pipe. --log-file is always set.
func childArgs(cmd *cobra.Command, user, logFile string) []string {
	args := []string{cmd.Name()}
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		switch fl.Name {
		case "user", "password-stdin", "log-file":
			return
		}
		if list, ok := fl.Value.(pflag.SliceValue); ok {
			for _, v := range list.GetSlice() {
				args = append(args, "--"+fl.Name+"="+v)
			}
			return
		}
		args = append(args, "--"+fl.Name+"="+fl.Value.String())
	})
	if user != "" {
		args = append(args, "--user="+user)
	}
	args = append(args, "--log-file="+logFile, "--")
	return append(args, cmd.Flags().Args()...)
}

// readyOnce makes sure fd 3 is written and closed once: after the close its
// number may belong to another file.
var readyOnce sync.Once

// signalReady tells a waiting parent how the mount went, the first time it
// is called. It does nothing in the foreground.
func signalReady(err error) {
	if !isBackgroundChild() {
		return
	}
	readyOnce.Do(func() { writeReady(withHint(err)) })
}

func writeReady(err error) {
	pipe := os.NewFile(readyFD, "ready")
	if pipe == nil {
		return
	}
	defer pipe.Close()
	if err != nil {
		fmt.Fprintf(pipe, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	io.WriteString(pipe, "ok\n")
}

// redirectLogs sends logs to path, if given.
func (g *globalFlags) redirectLogs(path string) error {
	if path == "" {
		return nil
	}
	f, err := openLogFile(path) // locked and rotated (logging.go)
	if err != nil {
		return fmt.Errorf("--log-file: %w", err)
	}
	g.logger, err = g.newLogger(f)
	return err
}
