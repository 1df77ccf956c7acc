package vectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

// offlineHelperEnv makes TestDefaultOfflineHelper run (in a child process).
const offlineHelperEnv = "INSIGHTOPS_DEFAULT_OFFLINE_HELPER"

// TestDefaultOfflineHelper is the child of
// TestDefaultWithoutNetworkOrModelDirFailsAtStart: it builds the default
// embedder as a start does and prints the error.
func TestDefaultOfflineHelper(t *testing.T) {
	if os.Getenv(offlineHelperEnv) == "" {
		return // only as the child process
	}
	e, err := vectors.NewEmbedder(config.Embedding{Provider: vectors.ProviderDefault})
	if err != nil {
		t.Fatal(err)
	}
	if e.Provider() != vectors.ProviderDefault || e.Model() != vectors.DefaultModel {
		t.Fatalf("embedder %s/%s", e.Provider(), e.Model())
	}
	if err = vectors.Load(e); err == nil {
		t.Fatal("the default embedder loaded without its files")
	}
	out, _ := json.Marshal(map[string]any{"error": err.Error(), "missing": errors.Is(err, vectors.ErrModelMissing)})
	fmt.Print("RESULT " + string(out))
}

// Without network and without EMBEDDING_MODEL_DIR, EMBEDDING_PROVIDER=
// default fails at start naming every missing file and where it looked.
// The child runs in a network namespace of its own when unshare(1) is
// there, so the first-use fetch surely fails; its HOME is an empty
// directory.
func TestDefaultWithoutNetworkOrModelDirFailsAtStart(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	args := []string{os.Args[0], "-test.run=^TestDefaultOfflineHelper$", "-test.count=1"}
	if un, err := exec.LookPath("unshare"); err == nil && exec.Command(un, "-n", "true").Run() == nil {
		args = append([]string{un, "-n"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), offlineHelperEnv+"=1", "HOME="+home, "XDG_CACHE_HOME=",
		"CHROMAGO_ONNX_RUNTIME_PATH=", "TOKENIZERS_LIB_PATH=", "EMBEDDING_MODEL_DIR=")
	out, err := cmd.CombinedOutput()
	_, res, ok := strings.Cut(string(out), "RESULT ")
	if err != nil || !ok {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var got struct {
		Error   string `json:"error"`
		Missing bool   `json:"missing"`
	}
	if err := json.NewDecoder(strings.NewReader(res)).Decode(&got); err != nil {
		t.Fatalf("child output %q: %v", res, err)
	}
	if !got.Missing {
		t.Errorf("not ErrModelMissing: %s", got.Error)
	}
	for _, f := range config.DefaultModelFiles("", func(k string) string { return map[string]string{"HOME": home}[k] }) {
		if !strings.Contains(got.Error, f.Path) {
			t.Errorf("message does not name %s at %s: %s", f.What, f.Path, got.Error)
		}
	}
	for _, want := range []string{"EMBEDDING_PROVIDER=default cannot load its model", "EMBEDDING_MODEL_DIR is not set", "fetching them on first use failed", "docs/VANNA.md"} {
		if !strings.Contains(got.Error, want) {
			t.Errorf("message lacks %q: %s", want, got.Error)
		}
	}
	t.Log(got.Error)
}

// A provisioned directory is checked before anything is loaded: missing
// files are named, and a SHA256SUMS line that does not match refuses it.
func TestDefaultModelDirIsCheckedBeforeLoading(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e, err := vectors.NewEmbedder(config.Embedding{Provider: "default", ModelDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := e.Dimension(context.Background()); err != nil || d != vectors.DefaultDimension {
		t.Errorf("dimension without loading: %d %v", d, err)
	}
	err = vectors.Load(e)
	if !errors.Is(err, vectors.ErrModelMissing) || !strings.Contains(err.Error(), filepath.Join(dir, config.ModelRuntimeLib)) ||
		!strings.Contains(err.Error(), filepath.Join(dir, config.ModelCacheDir, "model.onnx")) {
		t.Fatalf("empty dir: %v", err)
	}
	for _, f := range config.DefaultModelFiles(dir, os.Getenv) {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Path, []byte("not the real "+f.What), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sums := strings.Repeat("0", 64) + "  " + config.ModelCacheDir + "/model.onnx\n"
	if err := os.WriteFile(filepath.Join(dir, config.ModelChecksums), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.EmbedQuery(context.Background(), "a question")
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch for "+config.ModelCacheDir+"/model.onnx") {
		t.Fatalf("bad checksum: %v", err)
	}
}

// efConfig is a collection's embedding function as a client reads it.
type efConfig struct {
	Type   string         `json:"type"`
	Name   string         `json:"name"`
	Config map[string]any `json:"config"`
}

// readEFWithJS reads a collection's configured embedding function through
// Chroma's JavaScript client (deploy/chroma).
func readEFWithJS(t *testing.T, url, collection string) efConfig {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		testkit.Unavailable(t, "Node.js", err)
		return efConfig{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script, _ := filepath.Abs("testdata/read_ef_config.mjs")
	out, err := exec.CommandContext(ctx, node, script, url, collection, filepath.Join(root, "deploy/chroma")).Output()
	if err != nil {
		t.Fatalf("chromadb JS client: %v %s", err, out)
	}
	var got struct {
		EF efConfig `json:"embedding_function"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("JS output %q: %v", out, err)
	}
	return got.EF
}

// readEFWithChromaGo reads it through chroma-go, as a Go app would.
func readEFWithChromaGo(t *testing.T, url, collection string) efConfig {
	t.Helper()
	api, err := vectors.NewChromaHTTPClient(chroma.WithBaseURL(url))
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	col, err := api.GetCollection(context.Background(), collection, chroma.WithEmbeddingFunctionGet(vectors.NewLocalChromaEF()))
	if err != nil {
		t.Fatal(err)
	}
	impl, ok := col.Configuration().(*chroma.CollectionConfigurationImpl)
	if !ok {
		t.Fatalf("configuration %T", col.Configuration())
	}
	info, ok := impl.GetEmbeddingFunctionInfo()
	if !ok {
		t.Fatalf("no embedding_function in %s's configuration", collection)
	}
	return efConfig{Type: info.Type, Name: info.Name, Config: info.Config}
}

// Each collection records its embedding function in Chroma's collection
// configuration, read back identically by the JavaScript client and
// chroma-go; and a collection filled by one embedder refuses another's
// vectors (embedder_mismatch), its configuration unchanged.
func TestCollectionRecordsItsEmbeddingFunction(t *testing.T) {
	t.Parallel()
	srv := testkit.Chroma(t)
	ctx := context.Background()
	local := newClient(t, srv.URL, vectors.NewLocal(0))
	if err := local.Upsert(ctx, vectors.CollectionDDL, ddlDocs("alpha", "beta"), 0, nil); err != nil {
		t.Fatal(err)
	}
	openaiEmb, err := vectors.NewEmbedder(config.Embedding{Provider: "openai", OpenAIAPIKey: "sk-test-not-real", OpenAIModel: "text-embedding-3-small", OpenAIDimensions: 512})
	if err != nil {
		t.Fatal(err)
	}
	openai := newClient(t, srv.URL, openaiEmb)
	if _, err := openai.Ensure(ctx, vectors.CollectionSQL); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		collection, name string
		config           map[string]any
	}{
		{vectors.CollectionDDL, "insightops_local", map[string]any{"model": vectors.LocalModel, "dimension": float64(vectors.LocalDimension)}},
		{vectors.CollectionSQL, "openai", map[string]any{"api_key_env_var": "OPENAI_API_KEY", "model_name": "text-embedding-3-small", "dimensions": float64(512)}},
	} {
		for client, got := range map[string]efConfig{
			"chromadb (JS)": readEFWithJS(t, srv.URL, tc.collection),
			"chroma-go":     readEFWithChromaGo(t, srv.URL, tc.collection),
		} {
			if got.Type != "known" || got.Name != tc.name || len(got.Config) != len(tc.config) {
				t.Errorf("%s reads %s's embedding function as %+v, want known %s %v", client, tc.collection, got, tc.name, tc.config)
				continue
			}
			for k, v := range tc.config {
				if got.Config[k] != v {
					t.Errorf("%s: %s config %s = %v, want %v", client, tc.collection, k, got.Config[k], v)
				}
			}
		}
	}
	// The openai embedder (same dimension, other model) may not add its
	// vectors to the local collection: nothing is written.
	err = openai.Upsert(ctx, vectors.CollectionDDL, ddlDocs("gamma"), 0, nil)
	if !errors.Is(err, vectors.ErrEmbedderMismatch) || !strings.Contains(err.Error(), "local/"+vectors.LocalModel) || !strings.Contains(err.Error(), "openai/text-embedding-3-small") {
		t.Fatalf("openai into local: %v", err)
	}
	if n, err := local.Count(ctx, vectors.CollectionDDL); err != nil || n != 2 {
		t.Errorf("after the refused upsert: %d entries, %v", n, err)
	}
	if _, err := openai.Query(ctx, vectors.CollectionDDL, "alpha", 2); !errors.Is(err, vectors.ErrEmbedderMismatch) {
		t.Errorf("openai query of local vectors: %v", err)
	}
	if got := readEFWithJS(t, srv.URL, vectors.CollectionDDL); got.Name != "insightops_local" {
		t.Errorf("configuration after the refusal: %+v", got)
	}

	// A restore by a process configured with openai recreates the local
	// collection as the archive says: its configuration names the local
	// embedder, not the restoring one.
	var recs []vectors.Record
	if err := local.Export(ctx, vectors.CollectionDDL, 0, func(r vectors.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	md, _ := local.Info(ctx, vectors.CollectionDDL)
	if n, err := openai.Import(ctx, vectors.CollectionDDL, md.Metadata, records(recs), 0); err != nil || n != 2 {
		t.Fatalf("import: %d %v", n, err)
	}
	if got := readEFWithJS(t, srv.URL, vectors.CollectionDDL); got.Name != "insightops_local" || got.Config["dimension"] != float64(vectors.LocalDimension) {
		t.Errorf("configuration after a restore by another embedder: %+v", got)
	}
}

// A collection created before insightops recorded its embedding function
// (no embedding_function in its configuration) gets it the next time it is
// trained with the embedder its metadata names.
func TestOlderCollectionGetsItsEmbeddingFunctionRecorded(t *testing.T) {
	t.Parallel()
	srv := testkit.Chroma(t)
	ctx := context.Background()
	local := newClient(t, srv.URL, vectors.NewLocal(0))
	md, err := local.DesiredMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api, err := vectors.NewChromaHTTPClient(chroma.WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	cmd := chroma.NewMetadata()
	for k, v := range md {
		switch v := v.(type) {
		case string:
			cmd.SetString(k, v)
		case int64:
			cmd.SetInt(k, v)
		}
	}
	if _, err := api.CreateCollection(ctx, vectors.CollectionDDL, chroma.WithCollectionMetadataCreate(cmd),
		chroma.WithEmbeddingFunctionCreate(vectors.NewLocalChromaEF()), chroma.WithDisableEFConfigStorage()); err != nil {
		t.Fatal(err)
	}
	if got := readEFWithJS(t, srv.URL, vectors.CollectionDDL); got.Type == "known" {
		t.Fatalf("the older collection already names %+v", got)
	}
	if err := local.Upsert(ctx, vectors.CollectionDDL, ddlDocs("alpha"), 0, nil); err != nil {
		t.Fatal(err)
	}
	for client, got := range map[string]efConfig{
		"chromadb (JS)": readEFWithJS(t, srv.URL, vectors.CollectionDDL),
		"chroma-go":     readEFWithChromaGo(t, srv.URL, vectors.CollectionDDL),
	} {
		if got.Type != "known" || got.Name != "insightops_local" || got.Config["dimension"] != float64(vectors.LocalDimension) {
			t.Errorf("%s: %+v", client, got)
		}
	}
}
