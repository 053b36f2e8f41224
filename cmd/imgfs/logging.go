package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/cache/gc"
)

// logFlags are --log-format and --log-level.
type logFlags struct {
	format string
	level  string
}

func (l *logFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log as `text` or json (one object per line)")
	fs.StringVar(&l.level, "log-level", "", "log messages at this `level` and above: debug, info, warn or error (default info; --debug means debug)")
}

// newLogger builds the logger the flags ask for, writing to w.
func (g *globalFlags) newLogger(w io.Writer) (*slog.Logger, error) {
	level := g.logLevel
	if g.log.level != "" {
		if err := level.UnmarshalText([]byte(g.log.level)); err != nil {
			return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", g.log.level)}
		}
		// --log-level debug is --debug, for the commands that log only then.
		g.debug = g.debug || level <= slog.LevelDebug
	}
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.log.format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", g.log.format)}
}

// Background mounts' logs are capped: each file is rotated once it
// reaches maxLogSize, keeping one older file (.1), and starting a
// background mount removes the logs of dead mounts beyond the newest
// keptDeadLogs. A mount holds its log files flock'ed while it lives, so
// prune tells them from a dead mount's.
const (
	maxLogSize   = 16 << 20
	keptDeadLogs = 5
)

// openLogFile opens path for appending, locked, rotating at maxLogSize.
func openLogFile(path string) (io.Writer, error) {
	w := &rotatingLog{path: path, max: maxLogSize}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// rotatingLog appends to path; past max bytes it renames the file to
// path.1 (replacing the older one) and starts afresh. The file it rotated
// away stays open and locked until the next rotation, so the live mount's
// .1 is never taken for a dead one's.
type rotatingLog struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	prev *os.File
	size int64
}

func (r *rotatingLog) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// Best effort: an unlocked log only risks being pruned as a dead one.
	_ = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

func (r *rotatingLog) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size+int64(len(p)) > r.max && r.size > 0 {
		if err := os.Rename(r.path, r.path+".1"); err == nil {
			if r.prev != nil {
				r.prev.Close()
			}
			r.prev = r.f
			if err := r.open(); err != nil {
				r.f, r.prev = r.prev, nil // keep writing where we were
			}
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// pruneOldLogs removes the logs of dead background mounts in the cache at
// cacheDir beyond the newest keptDeadLogs.
func pruneOldLogs(cacheDir string) { gc.PruneDeadLogs(cacheDir, keptDeadLogs) }
