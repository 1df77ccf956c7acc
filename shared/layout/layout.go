// Package layout names the parts of the Insight Engine's stores that the
// job contract, the archive format and the vector store all speak of: the
// collections of the knowledge base in Vanna's layout. It imports nothing,
// so every package can use it.
package layout

import "slices"

// The three collections of the knowledge base, in Vanna's layout.
const (
	CollectionSQL           = "sql"
	CollectionDDL           = "ddl"
	CollectionDocumentation = "documentation"
)

// Collections lists the collections in the order Vanna's get_training_data
// reads them.
var Collections = []string{CollectionSQL, CollectionDDL, CollectionDocumentation}

// ValidCollection reports whether name is one of Collections.
func ValidCollection(name string) bool { return slices.Contains(Collections, name) }
