package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/client"
	"github.com/insightops/insightops/shared/jobspec"
)

func (e *env) backupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Create, list, verify, prune, restore, download and upload backup archives",
		Example: `  insightctl backup create --note "before the upgrade"
  insightctl backup list
  insightctl backup download backup-20261204T101500Z-01JD….tar.gz -o nightly.tar.gz`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(e.backupCreate(), e.backupList(), e.backupVerify(), e.backupPrune(), e.backupRestore(),
		e.backupDownload(), e.backupUpload())
	return cmd
}

// archiveArg completes archive names from the list.
func (e *env) archiveArg(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := e.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := c.Backups(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, len(list))
	for i, b := range list {
		names[i] = b.Filename
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func (e *env) backupCreate() *cobra.Command {
	var args jobspec.BackupCreateArgs
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Back up the stores (a backup.create job) and wait for it",
		Long: `Queue a backup of the System DB, the target DB and the vector store (or the
--component ones) and wait for it with a live progress bar. Exits 6 when a
store it reads is locked by another operation, 3 when the job fails.`,
		Example: `  insightctl backup create
  insightctl backup create --component system --component target --note nightly
  insightctl backup create --no-wait --idempotency-key nightly-$(date +%F)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := args.Validate(); err != nil {
				return usagef("%s", err.Error())
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			acc, err := c.SubmitBackup(cmd.Context(), args, e.key)
			if err != nil {
				return err
			}
			return e.submitted(cmd.Context(), c, acc)
		},
	}
	cmd.Flags().StringSliceVar(&args.Components, "component", nil, "component to back up: system, target, chroma (repeatable; default: every enabled one)")
	cmd.Flags().StringVar(&args.Note, "note", "", "note kept in the archive's manifest")
	e.jobFlags(cmd)
	return cmd
}

func (e *env) backupList() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the archives, newest first",
		Example: `  insightctl backup list
  insightctl backup list --output json | jq -r 'select(.verified) | .filename'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			list, err := c.Backups(cmd.Context())
			if err != nil {
				return err
			}
			return emitTable(e, list, []string{"NAME", "CREATED", "SIZE", "COMPONENTS", "VERIFIED", "SIGNATURE", "SHA256"}, func(b client.Backup) []string {
				return []string{b.Filename, when(&b.Created), humanBytes(b.SizeBytes), strings.Join(b.Components, ","), orDash(b.VerifyOutcome), orDash(b.Signature), b.SHA256}
			})
		},
	}
}

func (e *env) backupVerify() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Verify an archive (checksums, counts, a test restore of each part) and wait",
		Example: `  insightctl backup verify backup-20261204T101500Z-01JD….tar.gz
  insightctl backup verify "$(insightctl backup list --output json | head -1 | jq -r .filename)"`,
		Args:              oneArg("NAME"),
		ValidArgsFunction: e.archiveArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			args := jobspec.BackupVerifyArgs{Name: a[0]}
			if err := args.Validate(); err != nil {
				return usagef("%s", err.Error())
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			acc, err := c.SubmitVerify(cmd.Context(), args, e.key)
			if err != nil {
				return err
			}
			return e.submitted(cmd.Context(), c, acc)
		},
	}
	e.jobFlags(cmd)
	return cmd
}

func (e *env) backupPrune() *cobra.Command {
	var args jobspec.BackupPruneArgs
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Apply retention: keep the newest BACKUP_RETENTION_COUNT and the newest verified archive",
		Example: `  insightctl backup prune --dry-run
  insightctl backup prune`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			acc, err := c.SubmitPrune(cmd.Context(), args, e.key)
			if err != nil {
				return err
			}
			return e.submitted(cmd.Context(), c, acc)
		},
	}
	cmd.Flags().BoolVar(&args.DryRun, "dry-run", false, "only list what would be deleted")
	e.jobFlags(cmd)
	return cmd
}

func (e *env) backupRestore() *cobra.Command {
	var args jobspec.RestoreArgs
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore NAME",
		Short: "Restore an archive over the live stores (admin; a safety backup is made first)",
		Long: `Queue a restore of a listed archive and wait for it. It replaces the live
data of the restored components, so it needs --yes. A safety backup of the
current state is made first unless --skip-safety-backup.`,
		Example: `  insightctl backup restore backup-20261204T101500Z-01JD….tar.gz --yes
  insightctl backup restore NAME --component chroma --yes`,
		Args:              oneArg("NAME"),
		ValidArgsFunction: e.archiveArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			if !yes {
				return usagef("restore replaces live data: add --yes to confirm")
			}
			args.Archive = a[0]
			if err := args.Validate(); err != nil {
				return usagef("%s", err.Error())
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			acc, err := c.SubmitRestore(cmd.Context(), args, e.key)
			if err != nil {
				return err
			}
			return e.submitted(cmd.Context(), c, acc)
		},
	}
	cmd.Flags().StringSliceVar(&args.Components, "component", nil, "component to restore: system, target, chroma (repeatable; default: every one in the archive)")
	cmd.Flags().BoolVar(&args.SkipSafetyBackup, "skip-safety-backup", false, "do not back up the current state first")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm: the restored components' live data is replaced")
	e.jobFlags(cmd)
	return cmd
}

func (e *env) backupDownload() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "download NAME",
		Short: "Download an archive and check its SHA-256 against the stored digest",
		Long: `Stream an archive to a file (default: NAME in the current directory; "-" is
stdout) and check its SHA-256 and size against the digest the API stored
when the archive was made. A mismatch exits 8 and leaves no file. An
archive whose signature the API finds invalid is not downloaded (exit 8);
the signature's status and value are printed with the digest.`,
		Example: `  insightctl backup download backup-20261204T101500Z-01JD….tar.gz
  insightctl backup download NAME -o /srv/offsite/nightly.tar.gz
  insightctl backup download NAME -o - | tar -tz`,
		Args:              oneArg("NAME"),
		ValidArgsFunction: e.archiveArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			name := a[0]
			if _, err := backupfmt.ParseArchiveName(name); err != nil {
				return usagef("%s", err.Error())
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			status, err := signatureStatus(cmd.Context(), c, name)
			if err != nil {
				return err
			}
			if file == "-" {
				d, err := c.DownloadBackup(cmd.Context(), name, e.io.Out, nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.io.Err, "sha256 %s  %s (%d bytes, matches the stored digest)\n", d.SHA256, name, d.Bytes)
				return nil
			}
			if file == "" {
				file = name
			}
			d, err := e.downloadTo(cmd.Context(), c, name, file)
			if err != nil {
				return err
			}
			out := struct {
				client.Download
				File            string `json:"file"`
				SignatureStatus string `json:"signature_status"`
			}{d, file, status}
			return e.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "%s  %s\n%d bytes, sha256 matches the stored digest; signature %s\n", d.SHA256, file, d.Bytes, status)
				if d.Signature != "" {
					fmt.Fprintf(w, "signature %s\n", d.Signature)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "o", "", `where to write the archive (default: NAME; "-": stdout)`)
	return cmd
}

// errSignatureInvalid is an archive whose stored signature the API finds
// invalid: it was changed after it was signed, or signed by another key.
var errSignatureInvalid = errors.New("the API finds the archive's signature invalid: it was changed after it was signed, or signed with a key this deployment does not hold; not downloaded")

// signatureStatus is the archive's signature status in the list (valid,
// invalid, unsigned, unchecked); an invalid one is errSignatureInvalid and
// one that is not listed the API's 404.
func signatureStatus(ctx context.Context, c *client.Client, name string) (string, error) {
	list, err := c.Backups(ctx)
	if err != nil {
		return "", err
	}
	for _, b := range list {
		if b.Filename != name {
			continue
		}
		if b.Signature == "invalid" {
			return b.Signature, fmt.Errorf("archive %s: %w", name, errSignatureInvalid)
		}
		return b.Signature, nil
	}
	return "", &client.Error{Status: 404, Code: "not_found", Message: "no backup archive named " + name + " (insightctl backup list lists them)",
		Method: "GET", Path: "/admin/db/backup/list"}
}

// downloadTo downloads name into a temporary file beside file, renamed to
// file once its digest matched; on any failure nothing is left.
func (e *env) downloadTo(ctx context.Context, c *client.Client, name, file string) (client.Download, error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".insightctl-download-*")
	if err != nil {
		return client.Download{}, fmt.Errorf("create the download file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after the rename
	var progress func(done, total int64)
	var p *mpb.Progress
	if e.live() {
		var bar *mpb.Bar
		p, bar = e.byteBar("download "+name, -1)
		progress = func(done, total int64) {
			if total > 0 {
				bar.SetTotal(total, false)
			}
			bar.SetCurrent(done)
		}
		defer func() {
			bar.Abort(false)
			p.Wait()
		}()
	}
	d, err := c.DownloadBackup(ctx, name, tmp, progress)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", file, cerr)
	}
	if err != nil {
		return d, err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return d, fmt.Errorf("write %s: %w", file, err)
	}
	return d, nil
}

// byteBar is a live bar of bytes transferred.
func (e *env) byteBar(label string, total int64) (*mpb.Progress, *mpb.Bar) {
	p := mpb.New(mpb.WithOutput(e.io.Out), mpb.WithWidth(30))
	bar := p.New(total, mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
		mpb.PrependDecorators(decor.Name(label+" ", decor.WC{C: decor.DindentRight})),
		mpb.AppendDecorators(decor.CountersKibiByte(" % .1f / % .1f")),
	)
	return p, bar
}

func (e *env) backupUpload() *cobra.Command {
	var name, signature string
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Bring in an archive made by another deployment (admin; checked whole before it is listed)",
		Long: `Upload an archive file through the API's audited import: the API checks it
whole (structure, manifest, every part's digest) before it lists it, and
signs it with this deployment's key. The archive keeps its file name when
that is a valid archive name (else --name, or a fresh name the API picks).
An invalid archive exits 1 and leaves nothing listed; a name already
listed exits 6.`,
		Example: `  insightctl backup upload ./backup-20261204T101500Z-01JD….tar.gz
  insightctl --url https://staging.example.com backup upload nightly.tar.gz --name backup-20261204T101500Z-01JD….tar.gz`,
		Args: oneArg("FILE"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if name == "" {
				if _, err := backupfmt.ParseArchiveName(filepath.Base(a[0])); err == nil {
					name = filepath.Base(a[0])
				}
			} else if _, err := backupfmt.ParseArchiveName(name); err != nil {
				return usagef("--name: %s", err.Error())
			}
			f, err := os.Open(a[0])
			if err != nil {
				return usagef("open %s: %v", a[0], err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("stat %s: %w", a[0], err)
			}
			var r io.Reader = f
			if e.live() {
				p, bar := e.byteBar("upload "+filepath.Base(a[0]), st.Size())
				r = client.ProgressReader(f, st.Size(), func(done, _ int64) { bar.SetCurrent(done) })
				defer func() {
					if !bar.Completed() {
						bar.Abort(false)
					}
					p.Wait()
				}()
			}
			b, err := c.ImportBackup(cmd.Context(), name, r, st.Size(), signature)
			if err != nil {
				return err
			}
			return e.emit(b, func(w io.Writer) {
				fmt.Fprintf(w, "imported %s (%s, sha256 %s)\n", b.Filename, humanBytes(b.SizeBytes), b.SHA256)
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "archive name to store it under (default: the file's name when it is an archive name)")
	cmd.Flags().StringVar(&signature, "source-signature", "", "the signature the archive had where it came from (printed by backup download), audited with the import")
	return cmd
}

// oneArg is cobra.ExactArgs(1) with the argument's name in the message.
func oneArg(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("%s needs %s (got %d arguments)", cmd.CommandPath(), name, len(args))
		}
		return nil
	}
}
