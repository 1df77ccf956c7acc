package httpapi

import (
	"context"
	"errors"
	"time"
)

// StatusDisabled is the health status of a component that is not configured.
const StatusDisabled = "disabled"

// chromaHealth is the "chroma" component of GET /admin/db/health: disabled
// without CHROMA_URL, ok with the server's version when its heartbeat
// answers, down with the reason otherwise. It never makes the request fail.
func (s *Server) chromaHealth(ctx context.Context) Component {
	start := time.Now()
	vc, err := s.vectorStore()
	if errors.Is(err, errChromaDisabled) {
		return Component{Status: StatusDisabled, Detail: "CHROMA_URL is not set"}
	}
	if err != nil {
		return Component{Status: StatusDown, Detail: "misconfigured: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, min(ChromaTimeout, s.readTimeout))
	defer cancel()
	if err := vc.Heartbeat(ctx); err != nil {
		return Component{Status: StatusDown, Detail: "unreachable: " + err.Error(), LatencyMS: ms(time.Since(start))}
	}
	detail := vc.URL()
	if v, err := vc.Version(ctx); err == nil && v != "" {
		detail += " (Chroma " + v + ")"
	}
	return Component{Status: StatusOK, Detail: detail, LatencyMS: ms(time.Since(start))}
}
