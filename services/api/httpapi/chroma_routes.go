package httpapi

// chromaRoutes are the vector-store endpoints: train, knowledge base, clear.
var chromaRoutes = []routeDef{}
