package worker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// TestHandleDecodesValidatesAndTypesTheResult: the runtime handler Handle
// makes calls fn only with params that decode strictly into the args type
// and pass its Validate, refusing the others as invalid_params; a result
// returned with an error is kept only when it is not the zero value.
func TestHandleDecodesValidatesAndTypesTheResult(t *testing.T) {
	t.Parallel()
	failed := errors.New("verification failed")
	verify := func(ctx context.Context, job *Job, a jobspec.BackupVerifyArgs) (jobspec.BackupVerifyResult, error) {
		switch a.Name {
		case "backup-20261127T101500Z-01JD0000000000000000000000.tar.gz":
			return jobspec.BackupVerifyResult{Archive: a.Name, Outcome: "passed"}, nil
		case "backup-20261127T101500Z-01JD0000000000000000000001.tar.gz":
			return jobspec.BackupVerifyResult{Archive: a.Name, Outcome: "failed"}, failed
		}
		return jobspec.BackupVerifyResult{}, failed
	}
	h := Handle(verify)
	if h.Kind() != jobs.KindBackupVerify {
		t.Fatalf("Kind = %s", h.Kind())
	}
	for _, tc := range []struct {
		name, kind, params string
		code               jobs.Code // "" when fn's own outcome is expected
		wantErr            error
		wantResult         bool
	}{
		{"valid", jobs.KindBackupVerify, `{"name":"backup-20261127T101500Z-01JD0000000000000000000000.tar.gz"}`, "", nil, true},
		{"failed with a report", jobs.KindBackupVerify, `{"name":"backup-20261127T101500Z-01JD0000000000000000000001.tar.gz"}`, "", failed, true},
		{"failed without a result", jobs.KindBackupVerify, `{"name":"backup-20261127T101500Z-01JD0000000000000000000002.tar.gz"}`, "", failed, false},
		{"unknown field", jobs.KindBackupVerify, `{"name":"x"}`, jobs.CodeInvalidParams, nil, false},
		{"wrong type", jobs.KindBackupVerify, `{"name":42}`, jobs.CodeInvalidParams, nil, false},
		{"fails Validate", jobs.KindBackupVerify, `{"name":"../etc/passwd"}`, jobs.CodeInvalidParams, nil, false},
		{"no params fail Validate", jobs.KindBackupVerify, ``, jobs.CodeInvalidParams, nil, false},
		{"another kind", jobs.KindBackupPrune, `{}`, jobs.CodeUnknownKind, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := &Job{Record: jobs.Record{ID: jobs.NewID(), Kind: tc.kind, Params: json.RawMessage(tc.params)}, log: slog.New(slog.DiscardHandler)}
			res, err := h.Handler()(context.Background(), job)
			switch {
			case tc.code != "" && (!errors.Is(err, tc.code) || !jobs.IsPermanent(err)):
				t.Fatalf("err %v, want a permanent %s", err, tc.code)
			case tc.code == "" && !errors.Is(err, tc.wantErr) && !errors.Is(err, tc.wantErr):
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			case (res != nil) != tc.wantResult:
				t.Fatalf("result %#v, want one: %v", res, tc.wantResult)
			}
			if tc.wantResult {
				if _, ok := res.(jobspec.BackupVerifyResult); !ok {
					t.Fatalf("result is a %T", res)
				}
			}
		})
	}
}

// TestHandlersKeysEachHandlerByItsArgsKind: the map holds each typed
// handler under its args' kind, and a kind registered twice panics.
func TestHandlersKeysEachHandlerByItsArgsKind(t *testing.T) {
	t.Parallel()
	train := func(context.Context, *Job, jobspec.ChromaTrainArgs) (jobspec.ChromaTrainResult, error) {
		return jobspec.ChromaTrainResult{}, nil
	}
	clearAll := func(context.Context, *Job, jobspec.ChromaClearArgs) (jobspec.ChromaClearResult, error) {
		return jobspec.ChromaClearResult{}, nil
	}
	m := Handlers(Handle(train), Handle(clearAll))
	if len(m) != 2 || m[jobs.KindChromaTrain] == nil || m[jobs.KindChromaClear] == nil {
		t.Fatalf("handlers %v", m)
	}
	defer func() {
		if recover() == nil {
			t.Error("a kind registered twice did not panic")
		}
	}()
	Handlers(Handle(train), Handle(train))
}
