package vectors

// NewChromaHTTPClient is newChromaHTTPClient for the external tests that
// talk to Chroma through chroma-go directly: chroma-go's constructor swaps
// http.DefaultClient's transport, so every construction in the process
// must hold the same lock, or the race detector sees two at once.
var NewChromaHTTPClient = newChromaHTTPClient
