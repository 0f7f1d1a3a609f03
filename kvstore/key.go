package kvstore

import (
	"fmt"
	"strings"
)

// ValidateKey reports whether key can be stored by every backend: 1 to
// MaxKeyBytes bytes of printable ASCII without spaces, made of non-empty
// slash-separated segments, none of them "." or "..". The same key is
// thereby valid in Consul (which treats a leading "/" specially), in etcd and
// on disk, and cannot climb out of a prefix it was built under.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if err := checkChars(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := checkSegment(key, seg); err != nil {
			return err
		}
	}
	return nil
}

// ValidatePrefix reports whether prefix can be listed or watched: empty (all
// keys), or a valid key optionally followed by one "/".
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	trimmed, ok := strings.CutSuffix(prefix, "/")
	if ok && trimmed == "" {
		return fmt.Errorf("%w: prefix %q: use the empty prefix for all keys", ErrInvalidKey, prefix)
	}
	if err := ValidateKey(trimmed); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

func checkChars(key string) error {
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: key of %d bytes starting %q, at most %d allowed",
			ErrInvalidKey, len(key), key[:32], MaxKeyBytes)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: %q: byte %d is %q; keys are printable ASCII without spaces",
				ErrInvalidKey, key, i, c)
		}
	}
	return nil
}

func checkSegment(key, seg string) error {
	switch seg {
	case "":
		return fmt.Errorf("%w: %q has an empty segment (leading, trailing or double \"/\")", ErrInvalidKey, key)
	case ".", "..":
		return fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, key, seg)
	}
	return nil
}

// Join builds a key from segments, each validated as a key in itself would
// be, so a segment taken from outside input (a hostname, an account email)
// cannot add or remove levels.
func Join(segments ...string) (string, error) {
	key := strings.Join(segments, "/")
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	for _, s := range segments {
		if s == "" || strings.Contains(s, "/") {
			return "", fmt.Errorf("%w: segment %q of %q is empty or contains \"/\"", ErrInvalidKey, s, key)
		}
	}
	return key, nil
}
