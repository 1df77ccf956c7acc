package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a server a helper started for tests (Chroma, versitygw): in
// its own process group, so that stop also ends its children, with its
// output in a log file.
type process struct {
	name     string
	cmd      *exec.Cmd
	log      string
	done     chan struct{}
	stopOnce sync.Once
}

// startProcess starts cmd (its environment already set) with its output
// in the file logPath.
func startProcess(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// waitReady polls ready every interval until it is true, and stops the
// process and says why (with the log's tail) when it exits first, timeout
// passes or ctx ends; what names what ready checks, for the error.
func (p *process) waitReady(ctx context.Context, what string, timeout, interval time.Duration, ready func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before answering %s: %s", p.name, what, tail(p.log))
		case <-deadline.C:
			p.stop()
			return fmt.Errorf("%s did not answer %s within %s: %s", p.name, what, timeout, tail(p.log))
		case <-ctx.Done():
			p.stop()
			return fmt.Errorf("start %s: %w", p.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop ends the process group (SIGTERM, then SIGKILL after 5s), waits for
// the process to exit, and kills children that outlived it. It may be
// called more than once.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.done
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	})
}
