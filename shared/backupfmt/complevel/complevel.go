// Package complevel holds the compression levels an archive's compression
// accepts and the one it uses by default: the rule backupfmt's writer and
// the BACKUP_COMPRESSION_LEVEL configuration share. It is a package of its
// own so that config can use it without importing backupfmt.
package complevel

import "fmt"

// Range is the levels a compression accepts and the one it uses by
// default.
type Range struct {
	Min, Max, Default int
}

// Of returns the levels of a compression ("gzip" or "zstd"): gzip 1
// (fastest) to 9, default 5 (klauspost/compress's); zstd 1 to 22, default 1.
//
// zstd levels map onto klauspost/compress's four encoders (1–2 fastest,
// 3–5 default, 6–9 better, 10–22 best). Its default is 1, the fastest
// encoder: on the data archives hold (SQLite pages, uncompressed pg_dump
// output, JSONL of embeddings) it compresses in 1 MiB frames as small as
// the zstd CLI's level 3, with 40% less CPU than the encoder of level 3;
// on source-like text, level 3 is about 7% smaller. The README's Benchmark
// section has the figures.
func Of(compression string) (Range, error) {
	switch compression {
	case "gzip":
		return Range{Min: 1, Max: 9, Default: 5}, nil
	case "zstd":
		return Range{Min: 1, Max: 22, Default: 1}, nil
	}
	return Range{}, fmt.Errorf("compression %q: accepted values: gzip, zstd", compression)
}

// Check returns an error naming the accepted values when level is outside
// the compression's range.
func Check(compression string, level int) error {
	r, err := Of(compression)
	if err != nil {
		return err
	}
	if level < r.Min || level > r.Max {
		return fmt.Errorf("%s level %d: accepted values: %d to %d", compression, level, r.Min, r.Max)
	}
	return nil
}
