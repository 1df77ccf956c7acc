package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/presence"
)

// scrapeTimeout bounds what one collector asks the bus or a store at
// scrape time.
const scrapeTimeout = 2 * time.Second

// busCollector reads, at scrape time, the live workers per kind from the
// WORKERS bucket and the bytes of the streams an operator watches against
// their limits.
type busCollector struct {
	mu      sync.Mutex
	js      jetstream.JetStream
	workers jetstream.KeyValue
	kinds   []string
	streams []string
	live    *prometheus.Desc
	bytes   *prometheus.Desc
	limit   *prometheus.Desc
	ratio   *prometheus.Desc
}

var (
	busOnce  sync.Once
	busStats = &busCollector{
		live:  prometheus.NewDesc("insightops_workers_live", "Worker instances with a live presence key in WORKERS, by worker kind.", []string{"kind"}, nil),
		bytes: prometheus.NewDesc("insightops_stream_bytes", "Bytes a JetStream stream holds.", []string{"stream"}, nil),
		limit: prometheus.NewDesc("insightops_stream_limit_bytes",
			"Most bytes the stream may hold: its MaxBytes, else the account's JetStream storage limit; -1 when unlimited.", []string{"stream"}, nil),
		ratio: prometheus.NewDesc("insightops_stream_usage_ratio",
			"Share of its limit a JetStream stream holds (insightops_stream_bytes / insightops_stream_limit_bytes, 0–1); absent when unlimited.", []string{"stream"}, nil),
	}
)

// RegisterBus exports insightops_workers_live{kind} for kinds (0 for a
// kind without a live instance) read from the WORKERS bucket, and
// insightops_stream_bytes / insightops_stream_limit_bytes /
// insightops_stream_usage_ratio for streams. The
// API calls it; a later call replaces the earlier one.
func RegisterBus(js jetstream.JetStream, workers jetstream.KeyValue, kinds, streams []string) error {
	return registerOnce(&busOnce, busStats, "bus metrics", &busStats.mu, func() {
		busStats.js, busStats.workers, busStats.kinds, busStats.streams = js, workers, kinds, streams
	})
}

func (c *busCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.live
	ch <- c.bytes
	ch <- c.limit
	ch <- c.ratio
}

func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	js, workers, kinds, streams := c.js, c.workers, c.kinds, c.streams
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if workers != nil {
		// No sample when WORKERS cannot be read: a wrong 0 would page.
		if live, err := presence.List(ctx, workers); err == nil {
			for _, k := range kinds {
				ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(len(live[k])), k)
			}
		}
	}
	for _, s := range streams {
		used, limit, err := bus.StreamUsage(ctx, js, s)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(used), s)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(limit), s)
		if limit > 0 {
			ch <- prometheus.MustNewConstMetric(c.ratio, prometheus.GaugeValue, float64(used)/float64(limit), s)
		}
	}
}

// BackupStoreStats is what a backup store probe reports.
type BackupStoreStats struct {
	UsedBytes  int64
	LimitBytes int64 // -1: unlimited
	Archives   int
	Newest     time.Time // zero: no archive
}

// backupStoreCollector asks the backup store at scrape time.
type backupStoreCollector struct {
	mu       sync.Mutex
	probe    func(context.Context) (BackupStoreStats, error)
	used     *prometheus.Desc
	limit    *prometheus.Desc
	archives *prometheus.Desc
	newest   *prometheus.Desc
}

var (
	storeOnce  sync.Once
	storeStats = &backupStoreCollector{
		used:     prometheus.NewDesc("insightops_backup_store_used_bytes", "Bytes used in the backup store (the BACKUP_DIR filesystem, or the BACKUPS bucket).", nil, nil),
		limit:    prometheus.NewDesc("insightops_backup_store_limit_bytes", "Size of the backup store (the BACKUP_DIR filesystem, or the BACKUPS bucket's limit); -1 when unlimited.", nil, nil),
		archives: prometheus.NewDesc("insightops_backup_archives", "Archives listed in the backup store.", nil, nil),
		newest: prometheus.NewDesc("insightops_backup_newest_archive_timestamp_seconds",
			"Unix time the newest archive in the backup store was created (0: none); now minus this is the data at risk, to hold against the RPO.", nil, nil),
	}
)

// RegisterBackupStore exports the backup store's usage, archive count and
// newest archive, asked of probe at scrape time (the backup workers call
// it); a later call replaces the earlier probe.
func RegisterBackupStore(probe func(context.Context) (BackupStoreStats, error)) error {
	return registerOnce(&storeOnce, storeStats, "backup store metrics", &storeStats.mu, func() { storeStats.probe = probe })
}

func (c *backupStoreCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.used
	ch <- c.limit
	ch <- c.archives
	ch <- c.newest
}

func (c *backupStoreCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	probe := c.probe
	c.mu.Unlock()
	if probe == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s, err := probe(ctx)
	if err != nil {
		return // no sample rather than a wrong one
	}
	var newest float64
	if !s.Newest.IsZero() {
		newest = float64(s.Newest.UnixMilli()) / 1000
	}
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(s.UsedBytes))
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(s.LimitBytes))
	ch <- prometheus.MustNewConstMetric(c.archives, prometheus.GaugeValue, float64(s.Archives))
	ch <- prometheus.MustNewConstMetric(c.newest, prometheus.GaugeValue, newest)
}
