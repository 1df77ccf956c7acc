package httpapi

import (
	"net/http"

	"github.com/insightops/insightops/shared/auth"
)

// chromaRoutes are the vector-store endpoints: train, knowledge base, clear.
var chromaRoutes = []routeDef{
	{Route{http.MethodPost, "/admin/db/chroma/train", auth.Operator, false, "queue a Chroma training job (202); body optional, {}"}, (*Server).submitChromaTrain},
	{Route{http.MethodGet, "/admin/db/chroma/knowledge-base", auth.Viewer, false, "collections with counts and metadata and a page of entries: ?collection=&limit=&offset=, ?q= for the nearest entries with distances"}, (*Server).knowledgeBase},
	{Route{http.MethodDelete, "/admin/db/chroma/clear", auth.Admin, true, "queue a job emptying one collection (?collection_name=sql|ddl|documentation) or all three (202); ?confirm=true"}, (*Server).submitChromaClear},
}
