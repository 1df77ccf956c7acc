package jobs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/insightops/insightops/shared/jobs"
)

// TestCodedErrorsKeepCodeAndPermanenceThroughWraps: a coded error wrapped
// twice with %w still answers errors.Is for its code (and no other),
// errors.As, CodeOf and IsPermanent.
func TestCodedErrorsKeepCodeAndPermanenceThroughWraps(t *testing.T) {
	t.Parallel()
	cause := errors.New("the chroma lease is held by chroma.train 01J…")
	for _, tc := range []struct {
		name      string
		err       error
		code      jobs.Code
		permanent bool
	}{
		{"retryable", jobs.Retryable(jobs.CodeLockHeld, cause), jobs.CodeLockHeld, false},
		{"permanent", jobs.Permanent(jobs.CodeVerifyFailed, cause), jobs.CodeVerifyFailed, true},
		{"invalid", jobs.Invalid("note: %d bytes", 2000), jobs.CodeInvalidParams, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", tc.err))
			if !errors.Is(err, tc.code) {
				t.Errorf("errors.Is(%v, %s) = false", err, tc.code)
			}
			if errors.Is(err, jobs.CodeNotFound) {
				t.Errorf("errors.Is(%v, %s) = true", err, jobs.CodeNotFound)
			}
			var ce *jobs.CodedError
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Errorf("errors.As: %v, %+v", err, ce)
			}
			if got := jobs.CodeOf(err); got != tc.code {
				t.Errorf("CodeOf = %s, want %s", got, tc.code)
			}
			if got := jobs.IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
			if got := jobs.ErrorOf(err); got.Code != tc.code || got.Message != err.Error() {
				t.Errorf("ErrorOf = %+v", got)
			}
		})
	}
	wrapped := fmt.Errorf("step: %w", fmt.Errorf("attempt: %w", jobs.ErrCancelled))
	if got := jobs.CodeOf(wrapped); got != jobs.CodeCancelled {
		t.Errorf("CodeOf(cancelled) = %s", got)
	}
	if got := jobs.CodeOf(errors.New("plain")); got != jobs.CodeHandlerError {
		t.Errorf("CodeOf(plain) = %s", got)
	}
}

// TestCodesTableDocumentsEachCodeOnce: every code in the table is listed
// once, with a meaning, and Info finds it.
func TestCodesTableDocumentsEachCodeOnce(t *testing.T) {
	t.Parallel()
	seen := map[jobs.Code]bool{}
	for _, c := range jobs.Codes {
		if c.Code == "" || c.Meaning == "" || seen[c.Code] {
			t.Errorf("bad or repeated entry %+v", c)
		}
		seen[c.Code] = true
		if info, ok := c.Code.Info(); !ok || info != c {
			t.Errorf("Info(%s) = %+v, %v", c.Code, info, ok)
		}
	}
	for _, c := range []jobs.Code{jobs.CodeInvalidParams, jobs.CodeLockHeld, jobs.CodeDispatchFailed, jobs.CodeCancelled} {
		if !seen[c] {
			t.Errorf("%s is not in Codes", c)
		}
	}
	if _, ok := jobs.Code("no_such_code").Info(); ok {
		t.Error("Info found a code that is not in the table")
	}
}
