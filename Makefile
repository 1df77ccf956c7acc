# insightops — the two commands a fresh machine needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
MODULES := shared services/api services/init services/backup services/restore services/chroma services/insightops services/insightctl
## SERVICES: every binary of bin/ (insightctl is the command line; it has no image)
SERVICES := api init backup restore chroma insightops insightctl
IMAGES := $(filter-out insightctl,$(SERVICES))
PKGS := $(addsuffix /...,$(addprefix ./,$(MODULES)))
BIN := bin
DATA_DIR ?= ./data
export DATA_DIR
CHROMA_DIR := deploy/chroma
CHROMA_PORT ?= 8001
TEST_TIMEOUT ?= 15m
BACKUP_BENCH_BYTES ?= 1073741824
CHROMA_BENCH_RECORDS ?= 100000

.PHONY: run build test test-race bench lint gomod-check chroma-install chroma-run clean demo-db help

help:
	@echo "make run     build and start the all-in-one (embedded NATS + SQLite + demo target DB)"
	@echo "make test    run every module's tests (needs PostgreSQL at 127.0.0.1:5432; see README)"
	@echo "make bench   job round trip vs raw JetStream, Chroma batched training vs one-record upserts, retrieval hit rate per embedding provider"
	@echo "make build   build every binary into $(BIN)/ (bin/insightctl: the command line)"
	@echo "make monitoring-check   promtool check rules + test rules on deploy/monitoring"
	@echo "make dashboards         regenerate the Grafana dashboards of deploy/monitoring/dashboards"
	@echo "make screenshots        regenerate the console's screenshots in docs/screenshots (needs chromium)"

## build: every service binary into bin/ (cgo is on: chroma-go's ONNX embedder, used by
## EMBEDDING_PROVIDER=default, loads ONNX Runtime with dlopen; see docs/VANNA.md);
## bin/<service> builds one (go's build cache decides what is stale, so they are phony)
SERVICE_BINS := $(addprefix $(BIN)/,$(SERVICES))
.PHONY: $(SERVICE_BINS)
build: $(SERVICE_BINS)

$(SERVICE_BINS): $(BIN)/%:
	@mkdir -p $(BIN)
	@echo "build $@"
	@cd services/$* && $(GO) build -trimpath -o ../../$@ .

## run: the all-in-one on the embedded defaults, with the shipped demo target DB enabled;
## starts a local Chroma when CHROMA_URL is empty and Node.js is there; builds only
## bin/insightops (a fresh clone compiles one binary, not six, before the banner)
run: export ENABLE_TARGET_DB ?= true
run: $(BIN)/insightops
	@mkdir -p $(DATA_DIR)
	@if [ -z "$$CHROMA_URL" ]; then \
		if command -v npm >/dev/null 2>&1; then \
			$(MAKE) --no-print-directory chroma-install >/dev/null && \
			( $(CHROMA_DIR)/node_modules/.bin/chroma run --path $(DATA_DIR)/chroma --host 127.0.0.1 --port $(CHROMA_PORT) > $(DATA_DIR)/chroma.log 2>&1 & echo $$! > $(DATA_DIR)/chroma.pid ) && \
			echo "chroma: starting on http://127.0.0.1:$(CHROMA_PORT) (log $(DATA_DIR)/chroma.log)"; \
		else \
			echo "chroma: Node.js/npm not found; running without a vector store (set CHROMA_URL to use one)"; \
		fi; \
	fi; \
	trap '[ -f $(DATA_DIR)/chroma.pid ] && kill $$(cat $(DATA_DIR)/chroma.pid) 2>/dev/null; rm -f $(DATA_DIR)/chroma.pid' EXIT; \
	if [ -z "$$CHROMA_URL" ] && [ -f $(DATA_DIR)/chroma.pid ]; then export CHROMA_URL=http://127.0.0.1:$(CHROMA_PORT); fi; \
	$(BIN)/insightops

## test: every module's tests, then the alert rules' checks. go test -json goes through
## shared/cmd/testsummary, which prints what plain go test would (package lines, the output of
## every failure) and then how many tests passed, failed and skipped, with each skip's reason;
## under CI a skipped test fails the run. pipefail keeps go test's own exit status.
test: chroma-ensure s3-tools
	@mkdir -p $(BIN) && cd shared && $(GO) build -o ../$(BIN)/testsummary ./cmd/testsummary
	@set -o pipefail; $(GO) test -json -count=1 -timeout $(TEST_TIMEOUT) $(PKGS) 2>&1 | $(BIN)/testsummary
	@$(MAKE) --no-print-directory monitoring-check

test-race: chroma-ensure s3-tools
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# chroma-ensure installs the Chroma server the tests start, when npm is there
# (without it the Chroma tests skip, or fail under CI).
chroma-ensure:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory chroma-install; \
	else echo "npm not found: no Chroma server for the tests (they skip, or fail when CI is set)"; fi

## screenshots: PNGs of every console page into docs/screenshots, taken by the console's
## browser test (headless Chromium on the real all-in-one) as it walks the pages
.PHONY: screenshots
screenshots: chroma-ensure
	@mkdir -p docs/screenshots
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestConsoleInARealBrowser$$' ./services/insightops/allinone/

## monitoring-check: promtool check rules and promtool test rules on deploy/monitoring
## (promtool: Debian's prometheus package; .ci/run installs it). Without promtool it
## fails when CI is set and only says so otherwise.
.PHONY: monitoring-check
monitoring-check:
	@if ! command -v promtool >/dev/null 2>&1; then \
		echo "promtool not found (apt-get install prometheus): alert rules not checked"; \
		if [ -n "$$CI" ]; then exit 1; fi; exit 0; \
	fi; \
	cd deploy/monitoring && promtool check rules alerts.yml && promtool test rules alerts_test.yml

## dashboards: write the Grafana dashboards of deploy/monitoring/dashboards from their code
## (services/insightops/dashboards; a test fails when the files differ from it)
.PHONY: dashboards
dashboards:
	cd services/insightops && $(GO) run ./cmd/gendashboards -root ../..

## fuzz: every Go fuzz target of the repository (found by shared/cmd/fuzzrun), FUZZTIME each
## (default 10s; CI runs FUZZTIME=5s). A failure fails the target; Go saves the failing input
## under the package's testdata/fuzz/<target>/.
.PHONY: fuzz reliability chroma-ensure
fuzz:
	cd shared && $(GO) run ./cmd/fuzzrun -root .. -fuzztime $(or $(FUZZTIME),10s)

## reliability: the full-size fault, schedule and load tests (RELIABILITY_FULL=1), then every fuzz
## target for FUZZTIME (default 60s), then docs/RELIABILITY.md from the results written into
## RELIABILITY_OUT; fails if a step failed, a job or audit event was lost or duplicated, the load
## saw an error or a fuzz target failed (the report is written either way). CI=true is set for the
## tests so a service they cannot reach (PostgreSQL, Chroma, tmpfs) fails them instead of a skip.
RELIABILITY_OUT ?= $(DATA_DIR)/reliability
RELIABILITY_REPORT ?= docs/RELIABILITY.md
RELIABILITY_TESTS := TestFault|TestSchedule|TestLoad
reliability: chroma-install
	@out=$(abspath $(RELIABILITY_OUT)); rm -rf "$$out" && mkdir -p "$$out"; \
	fuzztime=$(or $(FUZZTIME),60s); tests=0; fuzz=0; \
	CI=$${CI:-true} RELIABILITY_FULL=1 RELIABILITY_OUT="$$out" $(GO) test -count=1 -timeout 90m -v -run '$(RELIABILITY_TESTS)' \
		./services/insightops/... ./services/backup/... 2>&1 | tee "$$out/tests.log" | grep -E '^(=== RUN|--- |FAIL|ok|panic)' | grep -v 'no tests to run' ; \
	tests=$${PIPESTATUS[0]}; \
	(cd shared && RELIABILITY_OUT="$$out" $(GO) run ./cmd/fuzzrun -root .. -fuzztime $$fuzztime > "$$out/fuzz.log" 2>&1) || fuzz=$$?; \
	grep -h '"msg":"fuzz' "$$out/fuzz.log" || true; \
	cd shared && $(GO) run ./cmd/reliabilityreport -in "$$out" -out $(abspath $(RELIABILITY_REPORT)) \
		-command "make reliability FUZZTIME=$$fuzztime$(if $(filter command line,$(origin RELIABILITY_TESTS)), RELIABILITY_TESTS='$(RELIABILITY_TESTS)')" \
		-step "go test -run '$(RELIABILITY_TESTS)' (RELIABILITY_FULL=1)=$$tests" -step "fuzzing ($$fuzztime per target)=$$fuzz"

## bench: job round trip (submit → worker → succeeded) against a raw JetStream baseline, same run;
## backups and restores of ~1 GB SQLite and PostgreSQL databases against sqlite3 .backup + zstd -3 -T2,
## zstd -d + mv, pg_dump -Fc and pg_restore (each archive verified, the SQLite one no more than 2%
## larger than zstd -3's); then Chroma training throughput on a generated 2,000-table schema
## against one-record-per-request upserts with the same requests in flight, and against raw
## batched upserts of the same records (the ceiling), same run, and for each embedding provider that can run here (local; default
## when its model is provisioned) the retrieval hit rate of the business-term questions beside its
## training throughput on the demo database (chromabench starts its own Chroma from deploy/chroma). Every command enforces its documented targets (jobbench
## -min-ratio, backupbench -max-*, chromabench -min-ratio/-min-ceiling, chromaxferbench
## -min-export-ratio/-min-import-ratio: Chroma export and import against chroma-go's batched Get
## and Add); all of them run, and
## make bench exits non-zero if any missed a target or failed.
bench:
	@rc=0; \
	(cd shared && $(GO) run ./cmd/jobbench -n 10000 -c 8 -replicas 2 -worker-concurrency 8 -rounds 5) || rc=1; \
	(cd services/backup && $(GO) run ./cmd/backupbench -size $(BACKUP_BENCH_BYTES) -compression zstd) || rc=1; \
	if command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory chroma-install && \
		(cd services/chroma && $(GO) run ./cmd/chromabench -tables 2000 -naive 1000 -rounds 3) || rc=1; \
		(cd services/chroma && $(GO) run ./cmd/chromaxferbench -records $(CHROMA_BENCH_RECORDS)) || rc=1; \
	else echo "chromabench: Node.js/npm not found: the Chroma benchmark cannot run (it needs a local Chroma)"; rc=1; fi; \
	if [ $$rc -ne 0 ]; then echo "make bench: a benchmark missed its target or failed (see above)"; fi; \
	exit $$rc

## lint: golangci-lint (config .golangci.yml, gofmt included) in every module, installed
## first into bin/tools at the pinned version
GOLANGCI_LINT_VERSION := v2.15.0
TOOLS := $(abspath $(BIN)/tools)
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)
lint: $(GOLANGCI_LINT)
	@rc=0; for m in $(MODULES); do echo "golangci-lint $$m"; \
		(cd $$m && $(GOLANGCI_LINT) run --config $(abspath .golangci.yml) ./...) || rc=1; done; exit $$rc

$(GOLANGCI_LINT):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@mv $(TOOLS)/golangci-lint $@

## gomod-check: every module builds on its own (GOWORK=off), as its image does, and no
## service module but the all-in-one (services/insightops, which embeds them all) requires
## another service module: what services share lives in ./shared
gomod-check:
	@for m in $(MODULES); do echo "GOWORK=off build $$m"; (cd $$m && GOWORK=off $(GO) build ./...) || exit 1; done
	@for s in api init backup restore chroma; do \
		other=$$(cd services/$$s && GOWORK=off $(GO) list -m all | grep '/services/' | grep -v "/services/$$s\$$" || true); \
		if [ -n "$$other" ]; then echo "services/$$s requires another service module: $$other"; exit 1; fi; \
	done; echo "no service module requires another (but the all-in-one)"

## s3-tools: the real S3 server the backup store's S3 tests start (versitygw's posix
## gateway, testkit.S3), built once from the Go module proxy into bin/tools at the
## pinned version; bin/tools/versitygw links to it
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(TOOLS)/versitygw-$(VERSITYGW_VERSION)
.PHONY: s3-tools
s3-tools: $(VERSITYGW)
	@ln -sf $(notdir $(VERSITYGW)) $(TOOLS)/versitygw

$(VERSITYGW):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	@mv $(TOOLS)/versitygw $@

chroma-install:
	@cd $(CHROMA_DIR) && { [ -x node_modules/.bin/chroma ] || npm ci --no-audit --no-fund; }

## chroma-run: a Chroma server in the foreground on CHROMA_PORT with data under DATA_DIR/chroma
chroma-run: chroma-install
	$(CHROMA_DIR)/node_modules/.bin/chroma run --path $(DATA_DIR)/chroma --host 127.0.0.1 --port $(CHROMA_PORT)

## demo-db: rebuild assets/databases/vanna_db.db from its generator
demo-db:
	cd shared && $(GO) run ./cmd/gendemo -out ../assets/databases/vanna_db.db

clean:
	rm -rf $(BIN)

## nats-certs: a CA and one certificate for the NATS nodes into NATS_TLS_DIR
## (client TLS and mutual-TLS routes of deploy/nats; never committed). The
## certificate names every host compose and the Helm chart use; serverAuth and
## clientAuth (a node presents it on the routes it dials). Rotation: docs/SECURITY.md.
NATS_TLS_DIR ?= deploy/nats/tls
NATS_TLS_DAYS ?= 365
NATS_TLS_SANS ?= DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost,DNS:nats,DNS:nats.nats.svc,DNS:nats.nats.svc.cluster.local,DNS:*.nats-headless.nats.svc,DNS:*.nats-headless.nats.svc.cluster.local,IP:127.0.0.1
.PHONY: nats-certs
nats-certs:
	@mkdir -p $(NATS_TLS_DIR) && cd $(NATS_TLS_DIR) && \
	if [ -f ca.key ]; then echo "$(NATS_TLS_DIR)/ca.key exists: reusing the CA"; else \
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
			-days $$(( $(NATS_TLS_DAYS) * 3 )) -subj "/CN=insightops NATS CA" 2>/dev/null; fi && \
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -out tls.csr -subj "/CN=nats" 2>/dev/null && \
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$(NATS_TLS_SANS)" > tls.ext && \
	openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $(NATS_TLS_DAYS) -extfile tls.ext -out tls.crt 2>/dev/null && \
	rm -f tls.csr tls.ext && chmod 600 ca.key tls.key && \
	echo "NATS TLS: $(NATS_TLS_DIR)/{ca.crt,tls.crt,tls.key} (keep ca.key offline)"

## docker: one image per service from deploy/docker/<service>.Dockerfile (repository root
## as the build context; each builds its module with GOWORK=off). IMAGE_PREFIX/IMAGE_TAG to retag.
IMAGE_PREFIX ?= insightops-
# IMAGE_TAG is the version the images are built as; deploy/k8s pins the same
# tag (never :latest — natsperm's TestDeployManifestsMatchTheCode checks it).
# A release: make docker IMAGE_TAG=x.y.z, then in deploy/k8s
#   kustomize edit set image insightops-api=registry/insightops-api:x.y.z …
# or sed -i 's/:0.1.0$$/:x.y.z/' deploy/k8s/*.yaml.
IMAGE_TAG ?= 0.1.0
.PHONY: docker
docker:
	@for s in $(IMAGES); do \
		echo "docker build $(IMAGE_PREFIX)$$s:$(IMAGE_TAG)"; \
		docker build -f deploy/docker/$$s.Dockerfile -t $(IMAGE_PREFIX)$$s:$(IMAGE_TAG) . || exit 1; \
	done
