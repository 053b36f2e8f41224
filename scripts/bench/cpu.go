package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// CPU accounting, to tell a read bounded by the CPUs from one bounded by
// waiting: what the whole machine was busy with during a measurement, and
// how much of it each process took.

// userHZ is the unit of the CPU times in /proc: USER_HZ, which Linux fixes
// at 100 for every architecture's user-space ABI.
const userHZ = 100

// processCPU returns the CPU time (user+sys) process pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// from the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// machineBusy returns the CPU time all CPUs together have spent not idle
// since boot: user, nice, system, irq, softirq and steal from /proc/stat,
// so that loopback networking done in softirq counts too.
func machineBusy() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, fmt.Errorf("/proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", sc.Text())
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += v
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// cpuWindow measures one run: the machine's busy time, the registry's CPU
// time, and this bench process's, from start to stop. While a command
// runs the bench only waits for it, so its own CPU is the counting proxy's.
type cpuWindow struct {
	regPid                int
	busy0, reg0, self0    time.Duration
	busy, registry, proxy time.Duration
	startErr              error
}

func startCPUWindow(regPid int) *cpuWindow {
	w := &cpuWindow{regPid: regPid}
	var err1, err2, err3 error
	w.busy0, err1 = machineBusy()
	w.reg0, err2 = processCPU(regPid)
	w.self0, err3 = processCPU(os.Getpid())
	w.startErr = errors.Join(err1, err2, err3)
	return w
}

func (w *cpuWindow) stop() error {
	busy, err1 := machineBusy()
	reg, err2 := processCPU(w.regPid)
	self, err3 := processCPU(os.Getpid())
	w.busy, w.registry, w.proxy = busy-w.busy0, reg-w.reg0, self-w.self0
	return errors.Join(w.startErr, err1, err2, err3)
}

// cpuBudget describes, in one note, how busy the machine was during a
// measurement and who used it: the median busy CPU time as a share of all
// CPUs over the median wall time, and each named process's median CPU.
func cpuBudget(what string, busy, wall samples, names []string, each ...samples) string {
	var parts []string
	var named float64
	for i, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f s", n, each[i].median()))
		named += each[i].median()
	}
	parts = append(parts, fmt.Sprintf("the rest (kernel threads, softirq, other work) %.2f s", max(busy.median()-named, 0)))
	return fmt.Sprintf("during %s the CPUs were %.0f%% busy: %.2f s of CPU in %.2f s (%s)",
		what, 100*busy.median()/wall.median()/float64(runtime.NumCPU()), busy.median(), wall.median(), strings.Join(parts, ", "))
}

// cpuFloor says how fast the cold cat could be if its CPU work were spread
// over every CPU without a gap: its median busy time over all CPUs, as a
// ratio to the anchor's median wall time.
func cpuFloor(busy, anchor samples) string {
	return fmt.Sprintf("CPU floor of the cold cat: its busy CPU time spread over all %d CPUs is %.2fx curl -o", runtime.NumCPU(), busy.median()/float64(runtime.NumCPU())/anchor.median())
}
