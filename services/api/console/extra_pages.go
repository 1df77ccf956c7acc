package console

import "net/http"

// extraRoutes registers the knowledge base, audit and accounts pages.
func (c *Console) extraRoutes(m *http.ServeMux) {}
