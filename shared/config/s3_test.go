package config

import (
	"strings"
	"testing"
	"time"
)

func TestS3StoreNeedsEndpointBucketAndCredentials(t *testing.T) {
	_, err := Load(env(map[string]string{"BACKUP_STORE": "s3"}))
	for _, want := range []string{"BACKUP_S3_ENDPOINT: BACKUP_STORE=s3 needs it", "BACKUP_S3_BUCKET: BACKUP_STORE=s3 needs it", "AWS_SECRET_ACCESS_KEY: BACKUP_STORE=s3 needs AWS_ACCESS_KEY_ID"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	_, err = Load(env(map[string]string{"BACKUP_STORE": "s3", "BACKUP_S3_ENDPOINT": "s3.amazonaws.com", "BACKUP_S3_BUCKET": "b", "BACKUP_S3_CREDENTIALS_FILE": "/no/such/file"}))
	for _, want := range []string{`BACKUP_S3_ENDPOINT="s3.amazonaws.com": accepted values: an http://`, `BACKUP_S3_CREDENTIALS_FILE="/no/such/file"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	c, err := Load(env(map[string]string{
		"BACKUP_STORE": "s3", "BACKUP_S3_ENDPOINT": "https://s3.eu-west-1.amazonaws.com", "BACKUP_S3_BUCKET": "b",
		"BACKUP_S3_PREFIX": "prod", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
		"BACKUP_S3_PART_SIZE_MB": "8", "BACKUP_S3_LOCK_DAYS": "30", "BACKUP_S3_LOCK_MODE": "compliance",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := S3{Endpoint: "https://s3.eu-west-1.amazonaws.com", Bucket: "b", Prefix: "prod/", Region: "us-east-1",
		AccessKeyID: "id", SecretAccessKey: "secret", Profile: "default", PartSize: 8 << 20, LockDays: 30, LockMode: "COMPLIANCE"}
	if c.BackupS3 != want {
		t.Fatalf("s3 = %+v, want %+v", c.BackupS3, want)
	}
	if _, err := Load(env(map[string]string{"BACKUP_S3_PART_SIZE_MB": "4"})); err == nil || !strings.Contains(err.Error(), "from 5 to 5120") {
		t.Fatalf("a 4 MiB part size: %v", err)
	}
}

func TestRetentionPolicy(t *testing.T) {
	c, err := Load(env(map[string]string{"BACKUP_RETENTION_COUNT": "3", "BACKUP_RETENTION_DAILY": "7", "BACKUP_RETENTION_MONTHLY": "12", "BACKUP_RETENTION_WITHIN": "2d"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Retention{Last: 3, Daily: 7, Monthly: 12, Within: 48 * time.Hour}
	if c.BackupRetention != want || c.BackupRetention.String() != "last 3, daily 7, monthly 12, within 48h0m0s" {
		t.Fatalf("retention = %+v (%s)", c.BackupRetention, c.BackupRetention)
	}
	if _, err := Load(env(map[string]string{"BACKUP_RETENTION_WEEKLY": "-1"})); err == nil || !strings.Contains(err.Error(), `BACKUP_RETENTION_WEEKLY="-1"`) {
		t.Fatalf("weekly -1: %v", err)
	}
}
