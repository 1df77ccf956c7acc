package initworker

// Step names, in the order the steps run; each is the "name" of one entry
// of Result.Steps.
const (
	StepGoldenCopy   = "golden_copy"
	StepMigrations   = "migrations"
	StepOntology     = "ontology"
	StepAdminUser    = "admin_user"
	StepDemoData     = "demo_data"
	StepAutoTrain    = "auto_train"
	StepMarkComplete = "mark_completed"
)

// Statuses of a step.
const (
	// StatusOK means the step did what it had to (which may be nothing, when
	// a previous init already did it).
	StatusOK = "ok"
	// StatusWarning means the step could not do its work but init may go on
	// without it (a missing optional asset, no bus in --once mode).
	StatusWarning = "warning"
	// StatusSkipped means the configuration turned the step off.
	StatusSkipped = "skipped"
	// StatusFailed means the step failed and ended the run.
	StatusFailed = "failed"
)

// Modes of a run, reported in Result.Mode.
const (
	// ModeJob is a run of a jobs.init.run command by the worker.
	ModeJob = "job"
	// ModeOnce is a run by RunOnce (`init --once`), without a bus job.
	ModeOnce = "once"
)

// Result is what an init run did: the job record's "result" and what
// `init --once` prints. It never holds a password, a hash or a URL's
// credentials.
type Result struct {
	// JobID is the init job's id (in --once mode, the id made up for the run).
	JobID string `json:"job_id"`
	// Mode is ModeJob or ModeOnce.
	Mode string `json:"mode"`
	// Steps holds one entry per step run, in order; a failed run ends with
	// the failed step.
	Steps []StepResult `json:"steps"`
	// Warnings counts the steps whose status is StatusWarning.
	Warnings int `json:"warnings"`
	// CompletedAt is the RFC 3339 time stored as init.completed_at; empty
	// when the run did not complete.
	CompletedAt string `json:"completed_at,omitempty"`
}

// Step returns the entry of the step called name, if it ran.
func (r Result) Step(name string) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return StepResult{}, false
}

// StepResult is one step's outcome. Detail holds the step's *Detail type
// below (FailureDetail when it failed).
type StepResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail any    `json:"detail"`
}

// FailureDetail is the detail of a failed step.
type FailureDetail struct {
	Error string `json:"error"`
	// Code is the error code the job record carries (empty for a retryable
	// error without one).
	Code string `json:"code,omitempty"`
}

// GoldenDetail is the detail of the golden_copy step.
type GoldenDetail struct {
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

// MigrationsDetail is the detail of the migrations step.
type MigrationsDetail struct {
	Dialect string `json:"dialect"`
	// Applied lists the versions this run applied; empty when the schema
	// was current.
	Applied       []int64 `json:"applied"`
	SchemaVersion int64   `json:"schema_version"`
}

// OntologyDetail is the detail of the ontology step.
type OntologyDetail struct {
	Dir       string `json:"dir"`
	Terms     int    `json:"terms"`
	Inserted  int    `json:"inserted"`
	Updated   int    `json:"updated"`
	Unchanged int    `json:"unchanged"`
	Reason    string `json:"reason,omitempty"`
}

// AdminDetail is the detail of the admin_user step.
type AdminDetail struct {
	Username string `json:"username"`
	// Role is the stored user's role ("admin" when init created it).
	Role string `json:"role"`
	// Created is true only for the run that inserted the user; an existing
	// user is never overwritten.
	Created bool `json:"created"`
}

// DemoDetail is the detail of the demo_data step.
type DemoDetail struct {
	// Rows is the size of the deterministic demo set.
	Rows int `json:"rows"`
	// Inserted counts the rows this run added (0 when they were all there).
	Inserted int    `json:"inserted"`
	Reason   string `json:"reason,omitempty"`
}

// AutoTrainDetail is the detail of the auto_train step.
type AutoTrainDetail struct {
	TrainJobID string `json:"train_job_id,omitempty"`
	// AlreadyPublished is true when an earlier delivery of the same init
	// job had published the train job (TrainJobID is that job): a
	// redelivered init never publishes a second one.
	AlreadyPublished bool `json:"already_published,omitempty"`
	// State is the train job's state when init looked.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// CompleteDetail is the detail of the mark_completed step.
type CompleteDetail struct {
	CompletedAt string `json:"completed_at"`
	JobID       string `json:"job_id"`
}
