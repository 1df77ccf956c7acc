package httpapi

import "sync"

// MaxStreamsPerUser is how many Server-Sent Events streams one user (or
// service token) may hold open at once; one more is 429 too_many_streams.
// Each stream is a goroutine and a KV watch held for as long as the job
// runs, so a client opening streams in a loop must not exhaust them.
const MaxStreamsPerUser = 8

// CodeTooManyStreams (429): the caller already holds MaxStreamsPerUser
// event streams.
const CodeTooManyStreams = "too_many_streams"

// userSlots counts what each key (a user) holds, up to limit each.
type userSlots struct {
	limit int
	mu    sync.Mutex
	m     map[string]int
}

func newUserSlots(limit int) *userSlots {
	return &userSlots{limit: limit, m: map[string]int{}}
}

// acquire takes a slot for key; false when key holds limit already.
func (u *userSlots) acquire(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m[key] >= u.limit {
		return false
	}
	u.m[key]++
	return true
}

// release gives back a slot acquire took.
func (u *userSlots) release(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m[key] <= 1 {
		delete(u.m, key)
		return
	}
	u.m[key]--
}
