package backupfmt

// Encryption records how an archive was encrypted at rest (package
// backupcrypt). The manifest inside the archive cannot hold it (the
// digests cover the bytes the manifest is part of), so it lives beside
// the archive: in the store's Meta of the archive and in the backup
// job's result. The archive's signature covers the ciphertext's SHA-256
// (the stored bytes), so it is checked before anything is decrypted.
type Encryption struct {
	// Method is "age".
	Method string `json:"method"`
	// Recipients are the fingerprints (backupcrypt.Fingerprint) of the
	// public keys the archive was encrypted to; any one of their private
	// keys decrypts it.
	Recipients []string `json:"recipients"`
	// PlaintextSHA256 and PlaintextBytes describe the compressed archive
	// before encryption (what decryption gives back).
	PlaintextSHA256 string `json:"plaintext_sha256"`
	PlaintextBytes  int64  `json:"plaintext_bytes"`
	// CiphertextSHA256 and CiphertextBytes describe the stored bytes (the
	// store's SHA-256 of the archive, the one its signature covers).
	CiphertextSHA256 string `json:"ciphertext_sha256"`
	CiphertextBytes  int64  `json:"ciphertext_bytes"`
}
