package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// Bounds on the subprocesses the bench runs. A 512 MiB transfer takes about
// a second on loopback; the margins are for a loaded shared machine.
const (
	transferTimeout = 2 * time.Minute  // one 512 MiB fetch, copy or read
	mountTimeout    = 30 * time.Second // imgfs mount --background until ready
	unmountTimeout  = 30 * time.Second
	commitTimeout   = time.Minute // a fully read blob until it is committed
)

// samples are the measurements of one quantity over several runs.
type samples []float64

// median returns the middle sample (the mean of the middle two for an even
// count), or 0 when there are none.
func (s samples) median() float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100).
func (s samples) percentile(p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	rank := int(math.Ceil(float64(len(c))*p/100)) - 1
	return c[max(0, min(rank, len(c)-1))]
}

// contender is one command measured in turns with others (see inTurns).
type contender struct {
	name string
	runs int
	run  func() (time.Duration, error)
	s    samples // wall time of each run, in seconds
	na   error   // the tool is not installed (errNotInstalled)
	err  error   // the first failure, after which it runs no more
}

// inTurns runs the contenders round-robin, each until it has its runs, so
// that a load spike on the shared machine hits them all alike and ratios
// stay fair. A contender that fails stops (its error is in err; a missing
// tool's in na) and the others go on.
func inTurns(cs ...*contender) {
	for round := 0; ; round++ {
		ran := false
		for _, c := range cs {
			if round >= c.runs || c.na != nil || c.err != nil {
				continue
			}
			ran = true
			d, err := c.run()
			switch {
			case errors.Is(err, errNotInstalled):
				c.na = err
			case err != nil:
				c.err = fmt.Errorf("%s: %w", c.name, err)
			default:
				c.s = append(c.s, d.Seconds())
			}
		}
		if !ran {
			return
		}
	}
}

// runCmd runs name with args, killing it after timeout, and returns its wall
// time from start to exit. stdout may be nil to discard the output (the
// child then writes to /dev/null). The error carries the tail of stderr.
func runCmd(ctx context.Context, timeout time.Duration, stdout io.Writer, name string, args ...string) (time.Duration, error) {
	u, err := runCmdUsage(ctx, timeout, stdout, name, args...)
	return u.wall, err
}

// usage is what running a command cost: its wall time, and the CPU time
// (user+sys) of it and its children.
type usage struct{ wall, cpu time.Duration }

// runCmdUsage is runCmd, with the command's CPU time too.
func runCmdUsage(ctx context.Context, timeout time.Duration, stdout io.Writer, name string, args ...string) (usage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	u := usage{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		u.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v", timeout)
		}
		return u, fmt.Errorf("%s %s: %w%s", name, strings.Join(args, " "), err, tailOf(stderr.String()))
	}
	return u, nil
}

// tailOf returns the last lines of a command's stderr, indented, for error
// messages.
func tailOf(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}

// catCmd returns `cat path > /dev/null`, bounded by transferTimeout.
func catCmd(ctx context.Context, path string) (*exec.Cmd, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	cmd := exec.CommandContext(ctx, "cat", path)
	cmd.WaitDelay = 5 * time.Second
	return cmd, cancel
}

// timeCat times `cat path > /dev/null`.
func timeCat(ctx context.Context, path string) (time.Duration, error) {
	return runCmd(ctx, transferTimeout, nil, "cat", path)
}

// dropPageCache evicts path's pages from the page cache, for a cold-disk
// read of that one file without disturbing the rest of the machine. Only
// clean pages go; the files it is used on are complete and synced.
func dropPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise %s: %w", path, err)
	}
	return nil
}

// waitFor polls cond every 10 ms until it holds, and fails after timeout.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// quietBytes waits until the proxy's blob byte count has not changed for
// quiet, so that requests still in flight when a reader finished are
// counted, and returns the count. It gives up waiting after limit, saying
// so: a server still fetching then is itself worth reporting.
func quietBytes(ctx context.Context, p *testregistry.Proxy, quiet, limit time.Duration) (n int64, settled bool) {
	deadline := time.Now().Add(limit)
	last, since := p.BlobBytes(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if cur := p.BlobBytes(); cur != last {
			last, since = cur, time.Now()
		} else if time.Since(since) >= quiet {
			return last, true
		}
	}
	return p.BlobBytes(), false
}

// runAll starts every command at once, waits for each started one and
// returns the wall time from the first start to the last exit, with the
// errors of any that failed to start or exited non-zero.
func runAll(cmds []*exec.Cmd) (time.Duration, error) {
	start := time.Now()
	var errs []error
	started := cmds[:0:0]
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			errs = append(errs, err)
			continue
		}
		started = append(started, c)
	}
	for _, c := range started {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(c.Path), err))
		}
	}
	return time.Since(start), errors.Join(errs...)
}
