package jobspec

import "github.com/insightops/insightops/shared/jobs"

// Step names, in the order the steps run; each is the "name" of one entry
// of InitResult.Steps.
const (
	InitStepGoldenCopy   = "golden_copy"
	InitStepMigrations   = "migrations"
	InitStepOntology     = "ontology"
	InitStepAdminUser    = "admin_user"
	InitStepDemoData     = "demo_data"
	InitStepAutoTrain    = "auto_train"
	InitStepMarkComplete = "mark_completed"
)

// Statuses of a step.
const (
	// InitStatusOK means the step did what it had to (which may be nothing, when
	// a previous init already did it).
	InitStatusOK = "ok"
	// InitStatusWarning means the step could not do its work but init may go on
	// without it (a missing optional asset, no bus in --once mode).
	InitStatusWarning = "warning"
	// InitStatusSkipped means the configuration turned the step off.
	InitStatusSkipped = "skipped"
	// InitStatusFailed means the step failed and ended the run.
	InitStatusFailed = "failed"
)

// Modes of a run, reported in InitResult.Mode.
const (
	// InitModeJob is a run of a jobs.init.run command by the worker.
	InitModeJob = "job"
	// InitModeOnce is a run by RunOnce (`init --once`), without a bus job.
	InitModeOnce = "once"
)

// InitResult is what an init run did: the job record's "result" and what
// `init --once` prints. It never holds a password, a hash or a URL's
// credentials.
type InitResult struct {
	// JobID is the init job's id (in --once mode, the id made up for the run).
	JobID string `json:"job_id"`
	// Mode is InitModeJob or InitModeOnce.
	Mode string `json:"mode"`
	// Steps holds one entry per step run, in order; a failed run ends with
	// the failed step.
	Steps []InitStep `json:"steps"`
	// Warnings counts the steps whose status is InitStatusWarning.
	Warnings int `json:"warnings"`
	// CompletedAt is the RFC 3339 time stored as init.completed_at; empty
	// when the run did not complete.
	CompletedAt string `json:"completed_at,omitempty"`
}

// Step returns the entry of the step called name, if it ran.
func (r InitResult) Step(name string) (InitStep, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return InitStep{}, false
}

// InitStep is one step's outcome. Detail holds the step's *Detail type
// below (InitFailureDetail when it failed).
type InitStep struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail any    `json:"detail"`
}

// InitFailureDetail is the detail of a failed step.
type InitFailureDetail struct {
	Error string `json:"error"`
	// Code is the error code the job record carries (empty for a retryable
	// error without one).
	Code jobs.Code `json:"code,omitempty"`
}

// InitGoldenDetail is the detail of the golden_copy step.
type InitGoldenDetail struct {
	// Source is the golden source path (TARGET_DB_SOURCE).
	Source string `json:"source,omitempty"`
	// Path is the runtime copy (TARGET_DB_PATH).
	Path string `json:"path,omitempty"`
	// Action is golden.ActionCopied, ActionReplaced or ActionUnchanged.
	Action         string `json:"action,omitempty"`
	SHA256         string `json:"sha256,omitempty"`
	PreviousSHA256 string `json:"previous_sha256,omitempty"`
	Bytes          int64  `json:"bytes,omitempty"`
	// Tables and Views are counted on the runtime copy opened read-only.
	Tables      int      `json:"tables,omitempty"`
	Views       int      `json:"views,omitempty"`
	TableSample []string `json:"table_sample,omitempty"`
	// Target describes an external TARGET_DATABASE_URL without its
	// credentials or query (step skipped).
	Target string `json:"target,omitempty"`
	// Reason explains a warning or a skip.
	Reason string `json:"reason,omitempty"`
}

// InitMigrationsDetail is the detail of the migrations step.
type InitMigrationsDetail struct {
	Dialect string `json:"dialect"`
	// Applied lists the versions this run applied; empty when the schema
	// was current.
	Applied       []int64 `json:"applied"`
	SchemaVersion int64   `json:"schema_version"`
}

// InitOntologyDetail is the detail of the ontology step.
type InitOntologyDetail struct {
	Dir       string `json:"dir"`
	Terms     int    `json:"terms"`
	Inserted  int    `json:"inserted"`
	Updated   int    `json:"updated"`
	Unchanged int    `json:"unchanged"`
	Reason    string `json:"reason,omitempty"`
}

// InitAdminDetail is the detail of the admin_user step.
type InitAdminDetail struct {
	Username string `json:"username"`
	// Role is the stored user's role ("admin" when init created it).
	Role string `json:"role"`
	// Created is true only for the run that inserted the user; an existing
	// user is never overwritten.
	Created bool `json:"created"`
}

// InitDemoDetail is the detail of the demo_data step.
type InitDemoDetail struct {
	// Rows is the size of the deterministic demo set.
	Rows int `json:"rows"`
	// Inserted counts the rows this run added (0 when they were all there).
	Inserted int    `json:"inserted"`
	Reason   string `json:"reason,omitempty"`
}

// InitAutoTrainDetail is the detail of the auto_train step.
type InitAutoTrainDetail struct {
	TrainJobID string `json:"train_job_id,omitempty"`
	// AlreadyPublished is true when an earlier delivery of the same init
	// job had published the train job (TrainJobID is that job): a
	// redelivered init never publishes a second one.
	AlreadyPublished bool `json:"already_published,omitempty"`
	// State is the train job's state when init looked.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// InitCompleteDetail is the detail of the mark_completed step.
type InitCompleteDetail struct {
	CompletedAt string `json:"completed_at"`
	JobID       string `json:"job_id"`
}

// InitArgs are the params of init.run: none (unknown fields are refused).
type InitArgs struct{}

// Kind is jobs.KindInit.
func (InitArgs) Kind() string { return jobs.KindInit }

// Validate accepts the only value.
func (InitArgs) Validate() error { return nil }
