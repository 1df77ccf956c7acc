module github.com/insightops/insightops/services/restore

go 1.26.0

require github.com/insightops/insightops/shared v0.0.0

replace github.com/insightops/insightops/shared => ../../shared
