package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Units of a row's values.
const (
	unitSeconds    = "s"
	unitBytes      = "B"
	unitThroughput = "B/s"
)

// What a target bounds: the ratio to the anchor, or the value itself.
const (
	ofRatio = "ratio"
	ofValue = "value"
)

// report is everything the bench measured, printed as a table and written
// as JSON with the same figures.
type report struct {
	Started  time.Time         `json:"started"`
	Duration float64           `json:"duration_s"`
	Setup    float64           `json:"setup_s"`
	Runs     int               `json:"runs"`
	SlowRuns int               `json:"slow_runs"`
	Machine  Machine           `json:"machine"`
	Load     [2]float64        `json:"load_avg_1m"` // at the start and at the end
	Tools    map[string]string `json:"tools"`
	Images   []ImageInfo       `json:"images"`
	Rows     []Row             `json:"rows"`
}

// Machine says where the figures were measured.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
}

// ImageInfo describes one pushed benchmark image.
type ImageInfo struct {
	Name       string `json:"name"`
	Manifest   string `json:"digest"`
	Layers     int    `json:"layers,omitempty"`
	LayerBytes int64  `json:"layer_bytes,omitempty"`
	Platforms  int    `json:"platforms,omitempty"`
}

// Row is one measured quantity: the median of a tool's samples, the median
// of its anchor's samples measured in the same run, their ratio (value ÷
// anchor) and the target, if any. Rows of other tools than imgfs (skopeo,
// ctr) have no target; they place imgfs among its peers.
type Row struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Tool       string   `json:"tool"`
	Unit       string   `json:"unit"`
	Value      *Stat    `json:"value,omitempty"`
	AnchorName string   `json:"anchor_name,omitempty"`
	Anchor     *Stat    `json:"anchor,omitempty"`
	Ratio      *float64 `json:"ratio,omitempty"`
	Target     *Target  `json:"target,omitempty"`
	Met        *bool    `json:"met,omitempty"`
	Notes      []string `json:"notes,omitempty"`
	NA         string   `json:"na,omitempty"`    // why the row has no value
	Error      string   `json:"error,omitempty"` // why the scenario failed
}

// Stat is the median of samples, with the samples.
type Stat struct {
	Median  float64 `json:"median"`
	Samples samples `json:"samples"`
}

// Target is what a row should meet: Op ("<=" or ">=") applied to the ratio
// or the value.
type Target struct {
	Op    string  `json:"op"`
	Value float64 `json:"value"`
	Of    string  `json:"of"`
}

// atMost and atLeast make targets.
func atMost(v float64, of string) *Target  { return &Target{Op: "<=", Value: v, Of: of} }
func atLeast(v float64, of string) *Target { return &Target{Op: ">=", Value: v, Of: of} }

// stat returns the Stat of s, or nil when s is empty (not measured).
func stat(s samples) *Stat {
	if len(s) == 0 {
		return nil
	}
	return &Stat{Median: s.median(), Samples: s}
}

func newReport(cfg config) *report {
	return &report{Started: time.Now().UTC(), Runs: cfg.runs, SlowRuns: cfg.slowRuns, Machine: machine(), Load: [2]float64{loadAvg()}}
}

// finish records the run's duration and the load at its end.
func (r *report) finish() {
	r.Duration = time.Since(r.Started).Seconds()
	r.Load[1] = loadAvg()
}

// loadAvg returns the 1-minute load average, which says how much other
// work on the (shared) machine may have skewed the figures.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

// add completes row (ratio, met) and appends it. A row of imgfs whose
// anchor was not measured says so instead of guessing a ratio.
func (r *report) add(row Row) {
	if row.Tool == "" {
		row.Tool = "imgfs"
	}
	if row.Value != nil && row.Anchor != nil && row.Anchor.Median != 0 {
		ratio := row.Value.Median / row.Anchor.Median
		row.Ratio = &ratio
	}
	switch {
	case row.NA != "":
		row.Notes = append(row.Notes, "n/a: "+row.NA)
	case row.AnchorName != "" && row.Anchor == nil:
		row.Notes = append(row.Notes, "anchor ("+row.AnchorName+") not measured in this run")
	}
	if t := row.Target; t != nil {
		var x *float64
		switch {
		case t.Of == ofRatio:
			x = row.Ratio
		case row.Value != nil:
			x = &row.Value.Median
		}
		if x != nil {
			met := *x <= t.Value
			if t.Op == ">=" {
				met = *x >= t.Value
			}
			row.Met = &met
		}
	}
	r.Rows = append(r.Rows, row)
}

// fail records that a scenario failed.
func (r *report) fail(id, title string, err error) {
	r.Rows = append(r.Rows, Row{ID: id, Name: title, Tool: "imgfs", Error: err.Error()})
}

// write writes the report as indented JSON to path, creating its directory.
func (r *report) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// print writes the table of imgfs rows, the table of other tools, then the
// notes and errors.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nimgfs bench: %d CPUs, kernel %s; medians of %d runs (%d for skopeo and ctr); run took %.0f s (set-up %.1f s)\n",
		r.Machine.CPUs, r.Machine.Kernel, r.Runs, r.SlowRuns, r.Duration, r.Setup)
	fmt.Fprintf(w, "load average %.1f at the start, %.1f at the end (other work on the machine skews the figures)\n\n", r.Load[0], r.Load[1])
	r.table(w, "scenario", "imgfs", func(row Row) bool { return row.Tool == "imgfs" && row.Error == "" })
	r.table(w, "other tools (scenario 1, for context)", "time", func(row Row) bool { return row.Tool != "imgfs" })
	var notes []string
	for _, row := range r.Rows {
		for _, n := range row.Notes {
			notes = append(notes, fmt.Sprintf("  %-3s %s: %s", row.ID, row.Name, n))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "notes:")
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
	for _, row := range r.Rows {
		if row.Error != "" {
			fmt.Fprintf(w, "\nFAILED %s %s:\n  %s\n", row.ID, row.Name, strings.ReplaceAll(row.Error, "\n", "\n  "))
		}
	}
}

// table prints the rows that keep selects, followed by an empty line,
// or nothing when there are none.
func (r *report) table(w io.Writer, title, valueHeader string, keep func(Row) bool) {
	rows := slices.DeleteFunc(slices.Clone(r.Rows), func(row Row) bool { return !keep(row) })
	if len(rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\tanchor\tratio\ttarget\tmet\n", title, valueHeader)
	for _, row := range rows {
		value, anchor, ratio, target, met := "-", "-", "-", "-", "-"
		if row.Value != nil {
			value = format(row.Unit, row.Value.Median)
		} else if row.NA != "" {
			value = "n/a"
		}
		if row.Anchor != nil {
			anchor = format(row.Unit, row.Anchor.Median)
		} else if row.AnchorName != "" {
			anchor = "n/a"
		}
		if row.Ratio != nil {
			ratio = formatRatio(*row.Ratio)
		}
		if t := row.Target; t != nil {
			if t.Of == ofRatio {
				target = fmt.Sprintf("%s%gx", t.Op, t.Value)
			} else {
				target = t.Op + format(row.Unit, t.Value)
			}
			met = "n/a"
			if row.Met != nil {
				met = map[bool]string{true: "yes", false: "MISSED"}[*row.Met]
			}
		}
		name := row.ID + " " + row.Name
		if row.AnchorName != "" {
			name += " (vs " + row.AnchorName + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, value, anchor, ratio, target, met)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// format renders v in unit for the table.
func format(unit string, v float64) string {
	switch unit {
	case unitSeconds:
		switch {
		case v < 0.01:
			return fmt.Sprintf("%.2f ms", v*1e3)
		case v < 1:
			return fmt.Sprintf("%.0f ms", v*1e3)
		default:
			return fmt.Sprintf("%.2f s", v)
		}
	case unitBytes:
		switch {
		case v < 1<<10:
			return fmt.Sprintf("%.0f B", v)
		case v < 1<<20:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		case v < 1<<30:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		default:
			return fmt.Sprintf("%.2f GiB", v/(1<<30))
		}
	case unitThroughput:
		if v >= 1e9 {
			return fmt.Sprintf("%.2f GB/s", v/1e9)
		}
		return fmt.Sprintf("%.0f MB/s", v/1e6)
	}
	return fmt.Sprintf("%g", v)
}

// formatRatio renders a ratio with two decimals, or three significant
// digits when it is small.
func formatRatio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.3fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}
