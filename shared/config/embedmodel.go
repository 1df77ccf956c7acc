package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files of EMBEDDING_PROVIDER=default (Chroma's default embedding function,
// all-MiniLM-L6-v2 on ONNX Runtime, through chroma-go's default_ef).
// EMBEDDING_MODEL_DIR holds them as the first-use fetch lays them out in
// a home directory, so running that fetch once with HOME set to the
// directory (`go run ./cmd/embedmodel -dir DIR` in shared) provisions it;
// docs/VANNA.md lists the sources and checksums:
//
//	.cache/chroma/shared/onnxruntime/libonnxruntime.1.22.0.so   ONNX Runtime 1.22, linux-x64
//	.cache/tokenizers/lib/libtokenizers.so                      pure-tokenizers' C library (ABI 0.1)
//	.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx/model.onnx  (and tokenizer.json, …: Chroma's onnx.tar.gz)
//	SHA256SUMS                                                   optional: sha256sum lines, checked at load
const (
	// ModelRuntimeLib is the ONNX Runtime library's path in the directory.
	ModelRuntimeLib = ".cache/chroma/shared/onnxruntime/libonnxruntime." + ModelRuntimeVersion + ".so"
	// ModelTokenizerLib is the tokenizer library's path in the directory.
	ModelTokenizerLib = ".cache/tokenizers/lib/libtokenizers.so" //nolint:gosec // a file path, not a credential
	// ModelCacheDir is the model's directory relative to a home directory,
	// as chroma-go v0.3.5 reads it.
	ModelCacheDir = ".cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx"
	// ModelChecksums is the optional checksum file of the directory.
	ModelChecksums = "SHA256SUMS"
	// ModelRuntimeVersion is the ONNX Runtime release chroma-go v0.3.5
	// fetches (its API version is the one onnxruntime_go v1.22 calls).
	ModelRuntimeVersion = "1.22.0"
)

// ModelFile is one file the default embedder needs.
type ModelFile struct {
	// What the file is, for messages.
	What string
	// Path is where it is looked for.
	Path string
}

// DefaultModelFiles lists the files of the default embedder and where
// they are looked for: in dir (EMBEDDING_MODEL_DIR, the layout above), or,
// when dir is empty, in the caches chroma-go and pure-tokenizers fill on
// first use (under $HOME/.cache, or the paths of CHROMAGO_ONNX_RUNTIME_PATH,
// TOKENIZERS_LIB_PATH and XDG_CACHE_HOME when they are set), read
// through getenv.
func DefaultModelFiles(dir string, getenv func(string) string) []ModelFile {
	home := dir
	if dir == "" {
		home = getenv("HOME")
	}
	runtimeLib := filepath.Join(home, ModelRuntimeLib)
	tokenizerLib := filepath.Join(home, ModelTokenizerLib)
	model := filepath.Join(home, ModelCacheDir)
	if dir == "" {
		if p := getenv("CHROMAGO_ONNX_RUNTIME_PATH"); p != "" {
			runtimeLib = p
		}
		if p := getenv("TOKENIZERS_LIB_PATH"); p != "" {
			tokenizerLib = p
		} else if c := getenv("XDG_CACHE_HOME"); c != "" {
			tokenizerLib = filepath.Join(c, "tokenizers", "lib", "libtokenizers.so")
		}
	}
	return []ModelFile{
		{What: "ONNX Runtime " + ModelRuntimeVersion + " library", Path: runtimeLib},
		{What: "tokenizers library", Path: tokenizerLib},
		{What: "all-MiniLM-L6-v2 ONNX model", Path: filepath.Join(model, "model.onnx")},
		{What: "all-MiniLM-L6-v2 tokenizer", Path: filepath.Join(model, "tokenizer.json")},
	}
}

// MissingModelFiles returns the files of DefaultModelFiles(dir, os.Getenv)
// that are not regular files.
func MissingModelFiles(dir string) []ModelFile {
	var missing []ModelFile
	for _, f := range DefaultModelFiles(dir, os.Getenv) {
		if st, err := os.Stat(f.Path); err != nil || !st.Mode().IsRegular() {
			missing = append(missing, f)
		}
	}
	return missing
}

// MissingModelReason says which files are missing and where they were
// looked for, the message of a start that cannot load the default
// embedder.
func MissingModelReason(dir string, missing []ModelFile) string {
	parts := make([]string, len(missing))
	for i, f := range missing {
		parts[i] = fmt.Sprintf("%s (%s)", f.What, f.Path)
	}
	where := "in EMBEDDING_MODEL_DIR " + dir
	if dir == "" {
		where = "in the first-use caches under $HOME/.cache (EMBEDDING_MODEL_DIR is not set)"
	}
	return fmt.Sprintf("EMBEDDING_PROVIDER=default cannot load its model: missing %s; looked %s; "+
		"provision the directory as docs/VANNA.md says", strings.Join(parts, ", "), where)
}
