package httpapi

// backupRoutes are the backup, verify, list and restore endpoints.
var backupRoutes = []routeDef{}
