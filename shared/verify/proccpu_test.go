package verify_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

// serverCPU returns a function giving the CPU time (user + system) used so
// far by the local process listening on rawURL's TCP port, found through
// /proc (Linux): the benchmarks report InfluxDB's CPU per reading, which the
// machine's load does not inflate the way it inflates wall-clock rates.
func serverCPU(rawURL string) (func() time.Duration, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, fmt.Errorf("no port in %s", rawURL)
	}
	inode, err := listeningInode(port)
	if err != nil {
		return nil, err
	}
	pid, err := pidOwning(inode)
	if err != nil {
		return nil, err
	}
	return func() time.Duration { return cpuOf(pid) }, nil
}

func listeningInode(port int) (string, error) {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			if i := strings.LastIndexByte(fs[1], ':'); i >= 0 {
				if p, err := strconv.ParseInt(fs[1][i+1:], 16, 32); err == nil && int(p) == port {
					return fs[9], nil
				}
			}
		}
	}
	return "", fmt.Errorf("nothing listens on port %d", port)
}

func pidOwning(inode string) (int, error) {
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	want := "socket:[" + inode + "]"
	for _, fd := range procs {
		if target, err := os.Readlink(fd); err == nil && target == want {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("no process owns socket %s", inode)
}

// cpuOf reads utime+stime of pid.
func cpuOf(pid int) time.Duration {
	st, _ := testenv.ReadPIDStat(pid)
	return st.CPU
}
