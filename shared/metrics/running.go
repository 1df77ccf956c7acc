package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FinalStates are the job states JobsFinished counts (one source: the
// label values DeclareJobKinds creates at zero).
var FinalStates = []string{"succeeded", "failed", "cancelled"}

// DeclareJobKinds creates the per-kind series of this process's job
// kinds at zero (jobs finished by final state, dead letters, retries,
// attempts, running jobs), so a rate over them exists from the first
// scrape and an idle worker still shows its kinds.
func DeclareJobKinds(kinds ...string) {
	running.mu.Lock()
	defer running.mu.Unlock()
	for _, k := range kinds {
		for _, s := range FinalStates {
			JobsFinished.WithLabelValues(k, s)
		}
		JobsDeadLettered.WithLabelValues(k)
		JobRetries.WithLabelValues(k)
		JobAttempts.WithLabelValues(k)
		running.kinds[k] = struct{}{}
	}
}

// JobRunning records that this process started running job id of kind;
// the returned heartbeat marks each heartbeat sent for it and done ends
// it. Together they export insightops_jobs_running{kind} and
// insightops_job_heartbeat_age_seconds{kind}, the age of the stalest
// heartbeat among the running jobs of kind (0 when none runs).
func JobRunning(id, kind string) (heartbeat, done func()) {
	now := time.Now()
	running.mu.Lock()
	running.kinds[kind] = struct{}{}
	running.jobs[id] = &runningJob{kind: kind, last: now}
	running.mu.Unlock()
	return func() {
			running.mu.Lock()
			if j := running.jobs[id]; j != nil {
				j.last = time.Now()
			}
			running.mu.Unlock()
		}, func() {
			running.mu.Lock()
			delete(running.jobs, id)
			running.mu.Unlock()
		}
}

type runningJob struct {
	kind string
	last time.Time
}

// runningCollector exports the running jobs and their heartbeat age at
// scrape time.
type runningCollector struct {
	mu    sync.Mutex
	kinds map[string]struct{}
	jobs  map[string]*runningJob
	now   func() time.Time
	count *prometheus.Desc
	age   *prometheus.Desc
}

var running = &runningCollector{
	kinds: map[string]struct{}{},
	jobs:  map[string]*runningJob{},
	now:   time.Now,
	count: prometheus.NewDesc("insightops_jobs_running", "Jobs this process is running now, by kind.", []string{"kind"}, nil),
	age: prometheus.NewDesc("insightops_job_heartbeat_age_seconds",
		"Seconds since the stalest heartbeat (JetStream InProgress) of a job this process runs, by kind; 0 when none runs. Above JOB_ACK_WAIT the job is redelivered to another worker.", []string{"kind"}, nil),
}

func (c *runningCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.age
}

func (c *runningCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	count := map[string]int{}
	age := map[string]float64{}
	for _, j := range c.jobs {
		count[j.kind]++
		age[j.kind] = max(age[j.kind], now.Sub(j.last).Seconds())
	}
	for k := range c.kinds {
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(count[k]), k)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age[k], k)
	}
}
