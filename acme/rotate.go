package acme

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// ReencryptResult counts what Reencrypt did.
type ReencryptResult struct {
	// Checked counts the records examined: Resealed + Current +
	// len(Failed). A record deleted while it was being resealed is not
	// counted.
	Checked int
	// Resealed counts the records re-sealed under the active key (in a
	// dry run, those that would be).
	Resealed int
	// Current counts the records already sealed under the active key.
	Current int
	// Failed lists the records left untouched because they did not decode
	// or open, or could not be written, each as "key: reason". Reasons
	// never hold key material or stored values.
	Failed []string
	// Changes are the records resealed (in a dry run, to be resealed), in
	// the order they were written.
	Changes []Reseal
}

// Reseal is one record Reencrypt re-sealed.
type Reseal struct {
	// Key is the record's store key.
	Key string
	// From and To describe the sealing before and after: a key id, or
	// "plaintext".
	From, To string
}

// reencryptAttempts bounds how often a record that keeps changing under
// Reencrypt is read again.
const reencryptAttempts = 10

// Reencrypt re-seals, under kr's first key, every certificate and account
// private key under keys that is sealed under another key (or in
// plaintext, when kr is not the plaintext keyring; and the reverse when it
// is, though the plaintext keyring opens no sealed key, so such records
// are listed in Failed). Each record is rewritten with a compare-and-set
// on the revision it was read at, so a concurrent write by the leader
// wins and that record is read again and retried. dryRun counts without
// writing, after opening each key as a real run would.
//
// Records that fail to decode or open are listed in Failed and left
// untouched (never deleted). So are records of another version or with
// fields this package does not know, which rewriting would lose. Only the
// sealed field changes: the record is decoded into its typed struct and
// re-encoded with json.MarshalIndent(rec, "", "  "), as the leader writes
// it.
//
// The error is a store error or ctx's; the result then counts what was
// done before it.
func Reencrypt(ctx context.Context, st kvstore.Store, keys Keys, kr *Keyring, dryRun bool) (ReencryptResult, error) {
	var res ReencryptResult
	if st == nil || kr == nil {
		return res, errors.New("acme: Reencrypt needs a store and a keyring")
	}
	for _, dir := range []string{dirCerts, dirAccounts} {
		prefix := keys.Prefix() + dir + "/"
		l, err := st.List(ctx, prefix)
		if err != nil {
			return res, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, kv := range l.KVs {
			if p, ok := keys.Parse(kv.Key); !ok || p.Dir != dir {
				continue // not a record the leader writes
			}
			if err := reencryptOne(ctx, st, kr, dir, kv, dryRun, &res); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// reencryptOne re-seals the record kv of folder dir, reading it again
// after each conflicting write.
func reencryptOne(ctx context.Context, st kvstore.Store, kr *Keyring, dir string, kv kvstore.KV, dryRun bool, res *ReencryptResult) error {
	failed := func(reason error) {
		res.Checked++
		res.Failed = append(res.Failed, fmt.Sprintf("%s: %v", kv.Key, reason))
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, sealed, err := decodeSealedRecord(dir, kv.Value)
		if err != nil {
			failed(err)
			return nil
		}
		if !kr.NeedsReseal(*sealed) {
			res.Checked++
			res.Current++
			return nil
		}
		keyPEM, err := kr.Open(kv.Key, *sealed)
		if err != nil {
			failed(err)
			return nil
		}
		resealed, err := kr.Seal(kv.Key, keyPEM)
		clear(keyPEM)
		if err != nil {
			return fmt.Errorf("seal %s: %w", kv.Key, err)
		}
		change := Reseal{Key: kv.Key, From: sealingName(*sealed), To: sealingName(resealed)}
		*sealed = resealed
		b, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return fmt.Errorf("encode %s: %w", kv.Key, err)
		}
		if dryRun {
			res.Checked++
			res.Resealed++
			res.Changes = append(res.Changes, change)
			return nil
		}
		_, err = st.Apply(ctx, nil, kvstore.PutIfOp(kv.Key, b, kv.Revision))
		switch {
		case err == nil:
			res.Checked++
			res.Resealed++
			res.Changes = append(res.Changes, change)
			return nil
		case errors.Is(err, kvstore.ErrValueTooLarge):
			failed(fmt.Errorf("resealed record too large for the store, left as it was: %w", err))
			return nil
		case !errors.Is(err, kvstore.ErrConflict):
			return fmt.Errorf("write %s: %w", kv.Key, err)
		case attempt == reencryptAttempts:
			failed(fmt.Errorf("changed %d times while being resealed; left as it was: run again", attempt))
			return nil
		}
		// Written meanwhile, by the leader: its record wins; reseal that.
		kv, err = st.Get(ctx, kv.Key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return nil // deleted meanwhile: nothing left to reseal
		}
		if err != nil {
			return fmt.Errorf("read %s again after a concurrent write: %w", kv.Key, err)
		}
	}
}

// decodeSealedRecord decodes a record of folder dir and returns it with a
// pointer to its sealed key, for re-encoding after the key is replaced.
func decodeSealedRecord(dir string, b []byte) (rec any, sealed *Sealed, err error) {
	switch dir {
	case dirCerts:
		var r CertRecord
		if err := decodeExact(b, &r); err != nil {
			return nil, nil, err
		}
		// DecodeCert's checks, on the strictly decoded record.
		if _, err := DecodeCert(b); err != nil {
			return nil, nil, err
		}
		return &r, &r.PrivateKey, nil
	case dirAccounts:
		var r AccountRecord
		if err := decodeExact(b, &r); err != nil {
			return nil, nil, err
		}
		if r.Version != RecordVersion {
			return nil, nil, fmt.Errorf("account record version %d; this tollgate reads version %d", r.Version, RecordVersion)
		}
		return &r, &r.Key, nil
	}
	return nil, nil, fmt.Errorf("acme: no sealed records in %q", dir)
}

// decodeExact decodes a record that re-encoding must not lose anything
// of: a field its struct lacks is an error.
func decodeExact(b []byte, v any) error {
	if len(b) > maxRecordBytes {
		return fmt.Errorf("record of %d bytes, at most %d", len(b), maxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return fmt.Errorf("record has a field this tollgate does not know (written by a newer version?); rewriting would drop it: upgrade tollgate first: %w", err)
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("record is not valid JSON: data after the record")
	}
	return nil
}

// sealingName describes how s is sealed, for operators.
func sealingName(s Sealed) string {
	switch {
	case s.Alg == AlgPlaintext:
		return AlgPlaintext
	case s.Alg == AlgXChaCha && s.KeyID != "":
		return s.KeyID
	case s.Alg == AlgXChaCha:
		return "no key id"
	}
	return fmt.Sprintf("algorithm %q", s.Alg)
}
