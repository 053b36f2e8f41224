package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A background mount re-runs imgfs as a detached child that reports over a
// pipe (fd 3) whether the mount came up, so the parent can exit 0 only once
// the mount is ready, or non-zero with the child's reason.
const (
	backgroundEnv = "IMGFS_BACKGROUND_CHILD"
	readyFD       = 3
)

func isBackgroundChild() bool { return os.Getenv(backgroundEnv) == "1" }

func startBackground(g *globalFlags, f *mountFlags) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logFile := f.logFile
	if logFile == "" {
		dir := g.cacheDir
		if dir == "" {
			if dir, err = defaultCacheDir(); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
			return fmt.Errorf("log directory: %w", err)
		}
		logFile = filepath.Join(dir, "logs", "mount-"+strconv.Itoa(os.Getpid())+".log")
	}
	abs, _ := filepath.Abs(logFile)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, append(os.Args[1:], "--log-file", abs)...)
	cmd.Env = append(os.Environ(), backgroundEnv+"=1")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start background mount: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "ok" {
		fmt.Printf("mounted in the background (pid %d, log %s)\n", cmd.Process.Pid, abs)
		cmd.Process.Release()
		return nil
	}
	cmd.Wait()
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return errors.New(msg)
	}
	return fmt.Errorf("background mount exited before it was ready; see %s", abs)
}

// signalReady tells a waiting parent how the mount went. It does nothing in
// the foreground.
func signalReady(err error) {
	if !isBackgroundChild() {
		return
	}
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("--log-file: %w", err)
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	g.logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level}))
	return nil
}
