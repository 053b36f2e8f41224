// Command bench measures imgfs against the tools people would otherwise use
// (curl, skopeo, ctr, a plain file read) on the same machine in the same run,
// and reports each figure as a ratio to its anchor.
//
// It starts the real registry from internal/testregistry on loopback, pushes
// deterministic fixture images, runs every scenario several times, and
// prints a table of medians with the target each ratio should meet. The same
// figures go to a JSON file. Missed targets are reported, never fatal: the
// exit status is non-zero only when something failed to run.
//
// Run it from the repository root after building bin/imgfs, as
// scripts/bench.sh (and so make bench) does:
//
//	go run ./scripts/bench [-o bench/results.json] [-runs 5] [-only 1,3]
//
// It needs root (FUSE mounts), docker-registry and curl; skopeo and
// containerd are used as anchors when installed and reported as n/a when not.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// config is what the command line sets.
type config struct {
	imgfs    string // path of the imgfs binary under test
	out      string // where the JSON results go
	runs     int    // repetitions of the cheap scenarios
	slowRuns int    // repetitions of skopeo and ctr, which take seconds each
	only     map[string]bool
	timeout  time.Duration // bound on the whole run, a safety net
}

func main() {
	os.Exit(run())
}

func run() int {
	var cfg config
	var only string
	flag.StringVar(&cfg.imgfs, "imgfs", "bin/imgfs", "imgfs `binary` under test")
	flag.StringVar(&cfg.out, "o", "bench/results.json", "write the results as JSON to `file`")
	flag.IntVar(&cfg.runs, "runs", 5, "runs of each scenario (the median is reported)")
	flag.IntVar(&cfg.slowRuns, "slow-runs", 3, "runs of skopeo and ctr, which take seconds each")
	flag.StringVar(&only, "only", "", "comma-separated `scenarios` to run, e.g. 1,3 (default all; 7 is measured in 3)")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.Parse()
	if cfg.runs < 1 || cfg.slowRuns < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs and -slow-runs must be at least 1")
		return 2
	}
	if only != "" {
		cfg.only = map[string]bool{}
		for _, id := range strings.Split(only, ",") {
			cfg.only[strings.TrimSpace(id)] = true
		}
		if cfg.only["7"] {
			cfg.only["3"] = true
		}
	}
	abs, err := filepath.Abs(cfg.imgfs)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: imgfs binary: %v (build it with: go build -o bin/imgfs ./cmd/imgfs)\n", err)
		return 2
	}
	cfg.imgfs = abs

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	rep := newReport(cfg)
	b, err := setUp(ctx, cfg, rep)
	if b != nil {
		defer b.tearDown()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: set-up: %v\n", err)
		return 1
	}
	failed := false
	for _, s := range scenarios {
		if cfg.only != nil && !cfg.only[s.id] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: scenario %s: %s\n", s.id, s.title)
		t := time.Now()
		if err := s.run(b); err != nil {
			failed = true
			rep.fail(s.id, s.title, err)
			fmt.Fprintf(os.Stderr, "bench: scenario %s failed: %v\n", s.id, err)
		}
		fmt.Fprintf(os.Stderr, "bench: scenario %s took %.1f s\n", s.id, time.Since(t).Seconds())
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: stopped: %v\n", context.Cause(ctx))
		failed = true
	}
	rep.finish()
	rep.print(os.Stdout)
	if err := rep.write(cfg.out); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		failed = true
	} else {
		fmt.Printf("\nresults written to %s\n", cfg.out)
	}
	if failed {
		return 1
	}
	return 0
}

// machine describes where the figures were measured, for the report.
func machine() Machine {
	var uts syscall.Utsname
	kernel := ""
	if syscall.Uname(&uts) == nil {
		b := make([]byte, 0, len(uts.Release))
		for _, c := range uts.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		kernel = string(b)
	}
	return Machine{CPUs: runtime.NumCPU(), Kernel: kernel, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
}
