package jobspec

import "github.com/insightops/insightops/shared/jobs"

// Spec is the typed contract of one job kind: the zero values of its Args
// and Result types, for what is built from the types themselves (the
// OpenAPI document's params and result schemas, documentation).
type Spec struct {
	Args   jobs.Args
	Result any
}

// Kind is the kind of s.Args.
func (s Spec) Kind() string { return s.Args.Kind() }

// Specs lists the contract of every job kind, in the order of jobs.Kinds.
var Specs = []Spec{
	{InitArgs{}, InitResult{}},
	{BackupCreateArgs{}, BackupCreateResult{}},
	{BackupVerifyArgs{}, BackupVerifyResult{}},
	{BackupPruneArgs{}, BackupPruneResult{}},
	{RestoreArgs{}, RestoreResult{}},
	{ChromaTrainArgs{}, ChromaTrainResult{}},
	{ChromaClearArgs{}, ChromaClearResult{}},
}
