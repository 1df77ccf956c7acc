package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFeatureFlagDefaultsFollowAppEnv(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		vars                  map[string]string
		seed, target, autoTrn bool
	}{
		{"development", map[string]string{}, true, false, false},
		{"production", map[string]string{"APP_ENV": "production", "JWT_SECRET": strings.Repeat("s", 32), "INIT_ADMIN_PASSWORD": "a-real-password"}, false, true, true},
		{"explicit overrides", map[string]string{"SEED_DEMO_DATA": "false", "ENABLE_TARGET_DB": "1", "AUTO_TRAIN_CHROMA": "yes"}, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			if c.SeedDemoData != tc.seed || c.EnableTargetDB != tc.target || c.AutoTrainChroma != tc.autoTrn {
				t.Fatalf("flags seed=%v target=%v train=%v", c.SeedDemoData, c.EnableTargetDB, c.AutoTrainChroma)
			}
		})
	}
}

func TestDefaultsMatchTheContract(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != "127.0.0.1:8000" || c.NATSListen != "127.0.0.1:4223" || c.DataDir != "./data" || c.BackupRetentionCount != 7 ||
		c.BackupCompression != "gzip" || c.BackupStore != "local" || c.AuditRetention != 400*24*time.Hour || c.JobRetention != 7*24*time.Hour ||
		c.TargetDBSource != "assets/databases/vanna_db.db" || c.NATSReplicas != 1 || !c.Embedded() {
		t.Fatalf("defaults %+v", c)
	}
	if c.TargetDBPath != "data/target/vanna_db.db" || c.BackupDir != "data/backups" {
		t.Fatalf("paths under DATA_DIR: %s %s", c.TargetDBPath, c.BackupDir)
	}
}

func TestCompressionLevelDefaultsAndRangeFollowTheCompression(t *testing.T) {
	for _, tc := range []struct {
		vars    map[string]string
		want    int
		wantErr string
	}{
		{vars: nil, want: 5},
		{vars: map[string]string{"BACKUP_COMPRESSION": "zstd"}, want: 1},
		{vars: map[string]string{"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "19"}, want: 19},
		{vars: map[string]string{"BACKUP_COMPRESSION_LEVEL": "9"}, want: 9},
		{vars: map[string]string{"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "23"}, wantErr: `BACKUP_COMPRESSION_LEVEL="23": accepted values: an integer from 1 to 22`},
		{vars: map[string]string{"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "0"}, wantErr: `BACKUP_COMPRESSION_LEVEL="0": accepted values: an integer from 1 to 22`},
	} {
		c, err := Load(env(tc.vars))
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want %q", tc.vars, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.vars, err)
		case c.BackupCompressionLevel != tc.want:
			t.Errorf("%v: level %d, want %d", tc.vars, c.BackupCompressionLevel, tc.want)
		}
	}
}

func TestBadValuesNameTheVariableAndAcceptedValues(t *testing.T) {
	for _, tc := range []struct {
		name, val string
		want      string
	}{
		{"APP_ENV", "staging", "APP_ENV=\"staging\": accepted values: development, production"},
		{"SEED_DEMO_DATA", "maybe", "SEED_DEMO_DATA=\"maybe\": accepted values: true, false"},
		{"NATS_REPLICAS", "0", "NATS_REPLICAS=\"0\": accepted values: an integer from 1 to 5"},
		{"BACKUP_COMPRESSION", "lz4", "BACKUP_COMPRESSION=\"lz4\": accepted values: gzip, zstd"},
		{"BACKUP_COMPRESSION_LEVEL", "10", "BACKUP_COMPRESSION_LEVEL=\"10\": accepted values: an integer from 1 to 9"},
		{"BACKUP_COMPRESSION_LEVEL", "fast", "BACKUP_COMPRESSION_LEVEL=\"fast\": accepted values: an integer from 1 to 9"},
		{"BACKUP_STORE", "ftp", "BACKUP_STORE=\"ftp\": accepted values: local, nats, s3"},
		{"BACKUP_RETENTION_COUNT", "-1", "BACKUP_RETENTION_COUNT=\"-1\""},
		{"AUDIT_RETENTION", "forever", "AUDIT_RETENTION=\"forever\": accepted values: a positive duration"},
		{"API_ADDR", "8000", "API_ADDR=\"8000\": accepted values: host:port"},
		{"EMBEDDING_PROVIDER", "magic", "EMBEDDING_PROVIDER=\"magic\": accepted values: default, local, openai, ollama"},
		{"DATABASE_URL", "mysql://x", "DATABASE_URL: accepted values: a postgres://"},
		{"CHROMA_URL", "localhost:8001", "CHROMA_URL=\"localhost:8001\": accepted values: an http://"},
		{"JWT_SECRET", "short", "JWT_SECRET: must be at least 32 characters"},
		{"NATS_INBOX_PREFIX", "_INBOX.>", "NATS_INBOX_PREFIX=\"_INBOX.>\": accepted values: subject tokens"},
		{"NATS_INBOX_PREFIX", "_INBOX.", "NATS_INBOX_PREFIX=\"_INBOX.\": accepted values: subject tokens"},
		{"NATS_INBOX_PREFIX", "a b", "NATS_INBOX_PREFIX=\"a b\": accepted values: subject tokens"},
		{"BACKUP_MAX_DECOMPRESSED", "lots", "BACKUP_MAX_DECOMPRESSED=\"lots\": accepted values: a size of at least 1.0 MiB"},
		{"BACKUP_MAX_DECOMPRESSED", "1KiB", "BACKUP_MAX_DECOMPRESSED=\"1KiB\": accepted values: a size"},
		{"AUDIT_MAX_BYTES", "-5", "AUDIT_MAX_BYTES=\"-5\": accepted values: a size"},
		{"AUDIT_VERIFY_TIMEOUT", "0s", "AUDIT_VERIFY_TIMEOUT=\"0s\": accepted values: a positive duration"},
		{"TARGET_TEST_ALLOWED_PATHS", "data/target", "TARGET_TEST_ALLOWED_PATHS=\"data/target\": accepted values: absolute directory paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(map[string]string{tc.name: tc.val}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestProductionRefusesDefaultPasswordAndEmptySecret(t *testing.T) {
	_, err := Load(env(map[string]string{"APP_ENV": "production"}))
	if err == nil {
		t.Fatal("production started with defaults")
	}
	for _, want := range []string{"INIT_ADMIN_PASSWORD: production refuses the default", "JWT_SECRET: production requires a secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestEveryVariableIsDocumented(t *testing.T) {
	read := map[string]bool{}
	_, _ = Load(func(k string) string { read[k] = true; return "" })
	documented := map[string]bool{}
	for _, v := range Vars {
		documented[v.Name] = true
		if !read[v.Name] {
			t.Errorf("%s is documented but never read", v.Name)
		}
	}
	for k := range read {
		if !documented[k] {
			t.Errorf("%s is read but not in Vars (the README table)", k)
		}
	}
}

func TestDurationsAcceptDays(t *testing.T) {
	c, err := Load(env(map[string]string{"AUDIT_RETENTION": "30d", "JOB_RETENTION": "36h"}))
	if err != nil || c.AuditRetention != 30*24*time.Hour || c.JobRetention != 36*time.Hour {
		t.Fatalf("%v %v %v", c.AuditRetention, c.JobRetention, err)
	}
}

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	for _, v := range Vars {
		if !strings.Contains(string(readme), "| `"+v.Name+"` |") {
			t.Errorf("README's configuration table lacks %s", v.Name)
		}
	}
}

func TestEmbeddingProviderDefaultAndModelDir(t *testing.T) {
	for _, p := range []string{"default", "DEFAULT", "local", "openai", "ollama"} {
		m := map[string]string{"EMBEDDING_PROVIDER": p, "OPENAI_API_KEY": "k"}
		c, err := Load(env(m))
		if err != nil || c.Embedding.Provider != strings.ToLower(p) {
			t.Errorf("%s: %q %v", p, c.Embedding.Provider, err)
		}
	}
	if c, err := Load(env(nil)); err != nil || c.Embedding.Provider != "local" {
		t.Errorf("the development default is local: %q %v", c.Embedding.Provider, err)
	}
	// EMBEDDING_MODEL_DIR is an absolute path; its files are checked by
	// the processes that embed (shared/vectors), not by every process.
	dir := t.TempDir()
	if c, err := Load(env(map[string]string{"EMBEDDING_PROVIDER": "default", "EMBEDDING_MODEL_DIR": dir})); err != nil || c.Embedding.ModelDir != dir {
		t.Errorf("default with an empty EMBEDDING_MODEL_DIR: %+v %v", c.Embedding, err)
	}
	_, err := Load(env(map[string]string{"EMBEDDING_PROVIDER": "default", "EMBEDDING_MODEL_DIR": "models"}))
	var ve *VarError
	if !errors.As(err, &ve) || ve.Var != "EMBEDDING_MODEL_DIR" || !strings.Contains(err.Error(), "an absolute directory path") {
		t.Errorf("relative EMBEDDING_MODEL_DIR: %v", err)
	}
	// Where the files are looked for: the directory's layout, or the
	// first-use caches under $HOME.
	files := DefaultModelFiles(dir, env(nil))
	if len(files) != 4 || files[0].Path != filepath.Join(dir, ModelRuntimeLib) || files[2].Path != filepath.Join(dir, ModelCacheDir, "model.onnx") {
		t.Errorf("layout: %+v", files)
	}
	cache := DefaultModelFiles("", env(map[string]string{"HOME": "/home/u", "TOKENIZERS_LIB_PATH": "/opt/tok.so"}))
	if cache[0].Path != "/home/u/"+ModelRuntimeLib || cache[1].Path != "/opt/tok.so" || cache[3].Path != "/home/u/"+ModelCacheDir+"/tokenizer.json" {
		t.Errorf("caches: %+v", cache)
	}
	if r := MissingModelReason("", cache); !strings.Contains(r, "EMBEDDING_MODEL_DIR is not set") || !strings.Contains(r, "/opt/tok.so") {
		t.Errorf("reason: %s", r)
	}
	if _, err := Load(env(map[string]string{"EMBEDDING_PROVIDER": "local", "EMBEDDING_MODEL_DIR": dir})); err != nil {
		t.Errorf("local ignores EMBEDDING_MODEL_DIR: %v", err)
	}
}

// TestBoundsVariables: the sizes accept SI and IEC units and byte counts,
// the defaults are the documented ones, the lists are trimmed.
func TestBoundsVariables(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.BackupMaxDecompressed != 32<<30 || c.AuditMaxBytes != 1<<30 || c.AuditVerifyTimeout != time.Minute ||
		c.TargetTestAllowedHosts != nil || c.TargetTestAllowedPaths != nil {
		t.Fatalf("defaults: %d %d %s %v %v", c.BackupMaxDecompressed, c.AuditMaxBytes, c.AuditVerifyTimeout, c.TargetTestAllowedHosts, c.TargetTestAllowedPaths)
	}
	c, err = Load(env(map[string]string{
		"BACKUP_MAX_DECOMPRESSED": "500MiB", "AUDIT_MAX_BYTES": "2 GB", "AUDIT_VERIFY_TIMEOUT": "90s",
		"TARGET_TEST_ALLOWED_HOSTS": " db.internal:5432 , ,10.0.0.7", "TARGET_TEST_ALLOWED_PATHS": "/srv/targets,/data/target",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BackupMaxDecompressed != 500<<20 || c.AuditMaxBytes != 2_000_000_000 || c.AuditVerifyTimeout != 90*time.Second {
		t.Fatalf("sizes: %d %d %s", c.BackupMaxDecompressed, c.AuditMaxBytes, c.AuditVerifyTimeout)
	}
	if strings.Join(c.TargetTestAllowedHosts, "|") != "db.internal:5432|10.0.0.7" || strings.Join(c.TargetTestAllowedPaths, "|") != "/srv/targets|/data/target" {
		t.Fatalf("lists: %q %q", c.TargetTestAllowedHosts, c.TargetTestAllowedPaths)
	}
	if c, err := Load(env(map[string]string{"BACKUP_MAX_DECOMPRESSED": "1073741824"})); err != nil || c.BackupMaxDecompressed != 1<<30 {
		t.Fatalf("a byte count: %d %v", c.BackupMaxDecompressed, err)
	}
}
