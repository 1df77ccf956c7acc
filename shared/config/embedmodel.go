package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files of EMBEDDING_PROVIDER=default (Chroma's default embedding function,
// all-MiniLM-L6-v2 on ONNX Runtime, through chroma-go's default_ef).
// EMBEDDING_MODEL_DIR holds them in this layout (docs/VANNA.md says how to
// provision it and lists the checksums):
//
//	onnxruntime/libonnxruntime.so   ONNX Runtime 1.22 for linux-x64
//	tokenizers/libtokenizers.so     pure-tokenizers' C library (ABI 0.1)
//	.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx/model.onnx
//	.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx/tokenizer.json
//	SHA256SUMS                      optional: sha256sum lines, checked at load
//
// The model sits where chroma-go reads it relative to a home directory
// (it takes the model's place from $HOME alone).
const (
	// ModelRuntimeLib is the ONNX Runtime library's path in the directory.
	ModelRuntimeLib = "onnxruntime/libonnxruntime.so"
	// ModelTokenizerLib is the tokenizer library's path in the directory.
	ModelTokenizerLib = "tokenizers/libtokenizers.so"
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
	var runtimeLib, tokenizerLib, model string
	if dir != "" {
		runtimeLib = filepath.Join(dir, ModelRuntimeLib)
		tokenizerLib = filepath.Join(dir, ModelTokenizerLib)
		model = filepath.Join(dir, ModelCacheDir)
	} else {
		home := getenv("HOME")
		runtimeLib = getenv("CHROMAGO_ONNX_RUNTIME_PATH")
		if runtimeLib == "" {
			runtimeLib = filepath.Join(home, ".cache/chroma/shared/onnxruntime", "libonnxruntime."+ModelRuntimeVersion+".so")
		}
		tokenizerLib = getenv("TOKENIZERS_LIB_PATH")
		if tokenizerLib == "" {
			cache := getenv("XDG_CACHE_HOME")
			if cache == "" {
				cache = filepath.Join(home, ".cache")
			}
			tokenizerLib = filepath.Join(cache, "tokenizers/lib/libtokenizers.so")
		}
		model = filepath.Join(home, ModelCacheDir)
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
