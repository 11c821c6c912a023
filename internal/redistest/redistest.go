// Package redistest owns throwaway redis-server processes for tests: a
// standalone server or a small Redis Cluster on free loopback ports, with
// persistence off, data in the test's temporary directory, and everything
// stopped when the test ends.
//
// When redis-server is not installed the test is skipped with a message
// saying how to install it, except when the CI environment variable is set:
// CI must never skip the real-Redis tests, so there the test fails instead.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts for waits. They bound polling; nothing sleeps for a fixed time.
const (
	startTimeout   = 15 * time.Second
	clusterTimeout = 60 * time.Second
	pollInterval   = 10 * time.Millisecond
	startAttempts  = 5
)

// Ports are picked below the usual ephemeral range (32768 and up), so an
// outgoing connection cannot take a server's port between Kill and Restart,
// and low enough that a cluster node's bus port (port + 10000) is valid.
const (
	minPort = 20000
	maxPort = 30000
)

// Server is one redis-server process.
type Server struct {
	tb      testing.TB
	port    int
	dir     string
	cluster bool
	// password, when set, is required of every client (--requirepass).
	password string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
}

// Start starts a standalone redis-server and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	requireInstalled(tb, "redis-server")
	return start(tb, false, tb.TempDir())
}

// StartWithPassword starts a standalone redis-server that requires
// password of every client (--requirepass), and stops it when the test
// ends. The helpers here authenticate with it.
func StartWithPassword(tb testing.TB, password string) *Server {
	tb.Helper()
	requireInstalled(tb, "redis-server")
	return startWith(tb, false, tb.TempDir(), password)
}

func start(tb testing.TB, cluster bool, dir string) *Server {
	tb.Helper()
	return startWith(tb, cluster, dir, "")
}

func startWith(tb testing.TB, cluster bool, dir, password string) *Server {
	tb.Helper()
	var lastErr error
	for range startAttempts {
		port, err := freePort(cluster)
		if err != nil {
			lastErr = err
			continue
		}
		s := &Server{tb: tb, port: port, dir: dir, cluster: cluster, password: password}
		if err := s.launch(); err != nil {
			// Most likely another test took the port first; pick another.
			lastErr = err
			continue
		}
		tb.Cleanup(func() {
			if tb.Failed() {
				s.logTail()
			}
			s.stop()
		})
		return s
	}
	tb.Fatalf("cannot start redis-server: %v", lastErr)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Kill stops the server abruptly, as a crash would, and waits until it is
// gone. Its data is lost: persistence is off.
func (s *Server) Kill() {
	s.tb.Helper()
	if !s.stop() {
		s.tb.Fatal("redistest: Kill of a server that is not running")
	}
}

// Restart starts the server again on the same port, empty, and waits until it
// answers.
func (s *Server) Restart() {
	s.tb.Helper()
	s.stop()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.launch()
		if err == nil {
			return
		}
		// The old process's socket can linger for a moment; retry until the
		// deadline rather than guessing how long.
		if time.Now().After(deadline) {
			s.tb.Fatalf("cannot restart redis-server on port %d: %v", s.port, err)
		}
		time.Sleep(pollInterval)
	}
}

// Pause stops the server process (SIGSTOP) without closing its
// connections, as a stalled or overloaded server would: commands sent
// meanwhile are neither answered nor refused. Resume continues it. A paused
// server is resumed when the test ends.
func (s *Server) Pause() {
	s.tb.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume continues a paused server; the commands it received meanwhile run
// then.
func (s *Server) Resume() {
	s.tb.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.tb.Fatalf("redistest: %v to a server that is not running", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: cannot send %v to redis-server: %v", sig, err)
	}
}

// Do sends one command and returns its reply as text (simple strings, bulk
// strings and integers; errors are returned as errors).
func (s *Server) Do(args ...string) (string, error) {
	return s.command(startTimeout, args...)
}

// command sends one command, authenticating first when the server needs a
// password.
func (s *Server) command(timeout time.Duration, args ...string) (string, error) {
	return commandAuth(s.Addr(), s.password, timeout, args...)
}

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	if s.password != "" {
		a = append(a, "--requirepass", s.password)
	}
	if s.cluster {
		a = append(a,
			"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", s.port),
			"--cluster-node-timeout", "5000",
		)
	}
	return a
}

func (s *Server) logPath() string {
	return filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", s.port))
}

// launch starts the process and waits until it answers PING.
func (s *Server) launch() error {
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open the server log: %w", err)
	}
	cmd := exec.Command("redis-server", s.args()...)
	cmd.Dir = s.dir
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("cannot run redis-server: %w", err)
	}
	exited := make(chan struct{})
	// Owned by the process: it ends when the process does.
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited at start: %s", s.port, s.lastLog())
		default:
		}
		if reply, err := s.command(time.Second, "PING"); err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("redis-server on port %d did not answer within %v: %s", s.port, startTimeout, s.lastLog())
		}
		time.Sleep(pollInterval)
	}
}

// stop kills the process if it runs and waits for it; it reports whether
// there was one.
func (s *Server) stop() bool {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return false
	}
	// A paused process would not die of SIGKILL until continued on some
	// systems; continue it first.
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-exited
	return true
}

func (s *Server) lastLog() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

func (s *Server) logTail() {
	s.tb.Logf("redis-server %s log tail: %s", s.Addr(), s.lastLog())
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Servers []*Server
}

// StartCluster starts masters cluster-enabled servers, joins them into one
// cluster with every slot assigned, and waits until every node reports the
// cluster healthy.
func StartCluster(tb testing.TB, masters int) *Cluster {
	tb.Helper()
	if masters < 3 {
		tb.Fatalf("redistest: a Redis Cluster needs at least 3 masters, got %d", masters)
	}
	requireInstalled(tb, "redis-server")
	requireInstalled(tb, "redis-cli")
	dir := tb.TempDir()
	c := &Cluster{}
	for range masters {
		c.Servers = append(c.Servers, start(tb, true, dir))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("cannot create the Redis Cluster: %v\n%s", err, out)
	}

	deadline := time.Now().Add(clusterTimeout)
	for {
		err := c.healthy()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			tb.Fatalf("Redis Cluster not healthy within %v: %v", clusterTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// healthy reports why the cluster is not yet usable from every node.
func (c *Cluster) healthy() error {
	for _, s := range c.Servers {
		info, err := command(s.Addr(), time.Second, "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		for _, want := range []string{
			"cluster_state:ok",
			"cluster_slots_ok:16384",
			"cluster_known_nodes:" + strconv.Itoa(len(c.Servers)),
		} {
			if !strings.Contains(info, want) {
				return fmt.Errorf("node %s: no %q yet", s.Addr(), want)
			}
		}
	}
	return nil
}

// Addrs lists the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.Addr()
	}
	return out
}

// URL is a redis+cluster:// URL naming every node.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs(), ",") }

// requireInstalled skips the test when name is not on PATH, or fails it
// under CI, which must run every test.
func requireInstalled(tb testing.TB, name string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not installed; the Redis tests need a real Redis (install it with `apt-get install redis-server`)", name)
	if os.Getenv("CI") != "" {
		tb.Fatal(msg + "; CI must not skip them")
	}
	tb.Skip(msg)
}

// freePort picks a port that is free now, and for a cluster node whose bus
// port is free too. Another process can still take it before the server
// binds it; start retries with a new port then.
func freePort(cluster bool) (int, error) {
	var lastErr error
	for range 50 {
		port := minPort + rand.IntN(maxPort-minPort)
		if err := probePort(port); err != nil {
			lastErr = err
			continue
		}
		if cluster {
			if err := probePort(port + 10000); err != nil {
				lastErr = err
				continue
			}
		}
		return port, nil
	}
	return 0, fmt.Errorf("no free port found: %w", lastErr)
}

func probePort(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// command sends one RESP command and reads one reply. It understands the
// replies the helpers need: simple strings, errors, integers and bulk
// strings.
func command(addr string, timeout time.Duration, args ...string) (string, error) {
	return commandAuth(addr, "", timeout, args...)
}

// commandAuth is command on a connection that first authenticates with
// password, unless it is empty.
func commandAuth(addr, password string, timeout time.Duration, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	var b strings.Builder
	write := func(args []string) {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if password != "" {
		write([]string{"AUTH", password})
	}
	write(args)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	if password != "" {
		if _, err := readReply(rd); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	return readReply(rd)
}

// readReply reads one reply.
func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unsupported reply %q", line)
}
