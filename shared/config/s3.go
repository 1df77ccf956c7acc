package config

import (
	"net/url"
	"os"
	"strconv"
	"time"
)

// S3 is where BACKUP_STORE=s3 keeps archives: an S3-compatible bucket
// (AWS S3, MinIO, Ceph RGW, versitygw…), reached with minio-go.
type S3 struct {
	// Endpoint is the server's URL, http:// or https:// (e.g.
	// https://s3.eu-west-1.amazonaws.com, http://127.0.0.1:7070).
	Endpoint string
	Bucket   string
	// Prefix is prepended to every key ("" or ending in "/").
	Prefix string
	Region string
	// PathStyle forces path-style requests (http://host/bucket/key);
	// false lets the client choose (virtual-hosted on AWS, path-style
	// elsewhere).
	PathStyle bool
	// Credentials: the standard AWS variables, or an AWS shared
	// credentials file and its profile when CredentialsFile is set.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	CredentialsFile string
	Profile         string
	// PartSize is the multipart part size in bytes: the memory one upload
	// holds.
	PartSize int64
	// LockDays > 0 puts every archive under object-lock retention for that
	// many days, in LockMode ("GOVERNANCE" or "COMPLIANCE"); the bucket
	// must have object lock enabled.
	LockDays int
	LockMode string
}

// S3 part sizes, in MiB: S3's minimum part size is 5 MiB, its maximum
// 5 GiB; 10,000 parts of the default hold a 160 GiB archive.
const (
	DefaultS3PartSizeMiB = 16
	minS3PartSizeMiB     = 5
	maxS3PartSizeMiB     = 5 << 10
)

// Retention is what backup.prune keeps (GFS, as restic's forget): the
// newest Last archives, the newest archive of each of the last Daily days,
// Weekly ISO weeks and Monthly months that have one (UTC), and every
// archive made within Within of the newest. Pinned archives and the newest
// verified one are always kept.
type Retention struct {
	Last    int
	Daily   int
	Weekly  int
	Monthly int
	Within  time.Duration
}

// s3 reads the BACKUP_S3_* and AWS_* variables; when the store is s3 and
// role opens it, the endpoint, the bucket and the credentials are
// required. A role that does not open the store (init, chroma) gets no
// credentials, and production refuses them there (roleSecrets).
func (p *parser) s3(store string, role Role) S3 {
	s := S3{
		Endpoint:        p.str("BACKUP_S3_ENDPOINT", ""),
		Bucket:          p.str("BACKUP_S3_BUCKET", ""),
		Prefix:          p.str("BACKUP_S3_PREFIX", ""),
		Region:          p.str("BACKUP_S3_REGION", "us-east-1"),
		PathStyle:       p.boolean("BACKUP_S3_PATH_STYLE", false),
		AccessKeyID:     p.str("AWS_ACCESS_KEY_ID", ""),
		CredentialsFile: p.str("BACKUP_S3_CREDENTIALS_FILE", ""),
		Profile:         p.str("AWS_PROFILE", "default"),
		PartSize:        int64(p.intRange("BACKUP_S3_PART_SIZE_MB", DefaultS3PartSizeMiB, minS3PartSizeMiB, maxS3PartSizeMiB)) << 20,
		LockDays:        p.intRange("BACKUP_S3_LOCK_DAYS", 0, 0, 36500),
	}
	opens := role.UsesBackupStore()
	if opens { // the roles that hold AWS_SECRET_ACCESS_KEY (roleSecrets)
		s.SecretAccessKey = p.str("AWS_SECRET_ACCESS_KEY", "")
		s.SessionToken = p.str("AWS_SESSION_TOKEN", "")
	}
	switch p.oneOf("BACKUP_S3_LOCK_MODE", "governance", "governance", "compliance") {
	case "compliance":
		s.LockMode = "COMPLIANCE"
	default:
		s.LockMode = "GOVERNANCE"
	}
	if s.Prefix != "" && s.Prefix[len(s.Prefix)-1] != '/' {
		s.Prefix += "/"
	}
	if store != "s3" || !opens {
		return s
	}
	if s.Endpoint == "" {
		p.add(&VarError{Var: "BACKUP_S3_ENDPOINT", Reason: "BACKUP_STORE=s3 needs it (an http:// or https:// URL)"})
	} else if u, err := url.Parse(s.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		p.fail("BACKUP_S3_ENDPOINT", s.Endpoint, "an http:// or https:// URL of the server, without a path, e.g. https://s3.eu-west-1.amazonaws.com")
	}
	if s.Bucket == "" {
		p.add(&VarError{Var: "BACKUP_S3_BUCKET", Reason: "BACKUP_STORE=s3 needs it"})
	}
	switch {
	case s.CredentialsFile != "":
		if _, err := os.Stat(s.CredentialsFile); err != nil {
			p.add(&VarError{Var: "BACKUP_S3_CREDENTIALS_FILE", Value: s.CredentialsFile, HasValue: true, Err: err})
		}
	case s.AccessKeyID == "" || s.SecretAccessKey == "":
		p.add(&VarError{Var: "AWS_SECRET_ACCESS_KEY", Reason: "BACKUP_STORE=s3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or BACKUP_S3_CREDENTIALS_FILE"})
	}
	return s
}

// retention reads BACKUP_RETENTION_DAILY, _WEEKLY, _MONTHLY and _WITHIN;
// last is BACKUP_RETENTION_COUNT.
func (p *parser) retention(last int) Retention {
	r := Retention{
		Last:    last,
		Daily:   p.intRange("BACKUP_RETENTION_DAILY", 0, 0, 10000),
		Weekly:  p.intRange("BACKUP_RETENTION_WEEKLY", 0, 0, 10000),
		Monthly: p.intRange("BACKUP_RETENTION_MONTHLY", 0, 0, 10000),
	}
	if v := p.str("BACKUP_RETENTION_WITHIN", ""); v != "" && v != "0" {
		r.Within = p.duration("BACKUP_RETENTION_WITHIN", 0)
	}
	return r
}

// String names the policy as the prune result reports it, e.g.
// "last 7, daily 7, weekly 4, monthly 12, within 48h0m0s".
func (r Retention) String() string {
	s := "last " + strconv.Itoa(r.Last)
	for _, f := range []struct {
		name string
		n    int
	}{{"daily", r.Daily}, {"weekly", r.Weekly}, {"monthly", r.Monthly}} {
		if f.n > 0 {
			s += ", " + f.name + " " + strconv.Itoa(f.n)
		}
	}
	if r.Within > 0 {
		s += ", within " + r.Within.String()
	}
	return s
}
