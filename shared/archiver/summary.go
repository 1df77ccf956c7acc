package archiver

import (
	"maps"
	"path"
	"strings"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/snapshot"
)

// Summarize returns the per-component summary of a manifest.
func Summarize(m backupfmt.Manifest) map[string]jobspec.ComponentSummary {
	out := map[string]jobspec.ComponentSummary{}
	for _, name := range backupfmt.Components {
		c, ok := m.Components[name]
		if !ok {
			continue
		}
		s := jobspec.ComponentSummary{Status: c.Status, Reason: c.Reason, Source: c.Source}
		if c.Status == backupfmt.StatusIncluded {
			s.Count = 0
			for _, f := range c.Files {
				s.Files = append(s.Files, f.Path)
				s.Bytes += f.Size
				if f.Count < 0 || s.Count < 0 {
					s.Count = backupfmt.CountUnknown
				} else {
					s.Count += f.Count
				}
			}
			s.Counts = componentCounts(name, c)
		}
		out[name] = s
	}
	return out
}

// componentCounts reads per-table counts from the Meta the backup wrote
// (snapshot.Counts, or map[string]any after a JSON round trip), and per
// collection counts from the chroma files.
func componentCounts(name string, c backupfmt.Component) map[string]int64 {
	out := map[string]int64{}
	if name == backupfmt.ComponentChroma {
		for _, f := range c.Files {
			out[strings.TrimSuffix(path.Base(f.Path), ".jsonl")] = f.Count
		}
		return out
	}
	switch t := c.Meta["tables"].(type) {
	case snapshot.Counts:
		maps.Copy(out, t)
	case map[string]int64:
		maps.Copy(out, t)
	case map[string]any:
		for k, v := range t {
			if f, ok := v.(float64); ok {
				out[k] = int64(f)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
