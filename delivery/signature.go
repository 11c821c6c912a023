package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers a webhook request carries besides Content-Type.
const (
	// HeaderDelivery holds the message id, which the receiver
	// deduplicates by: a retried message keeps its id.
	HeaderDelivery = "Touchpoint-Delivery"
	// HeaderSignature holds the signature, in the format Sign writes.
	HeaderSignature = "Touchpoint-Signature"
)

// DefaultTolerance is how far from the receiver's clock a signature's
// time may be for Verify to accept it, as suggested to receivers: wide
// enough for clock skew and a slow attempt, narrow enough that a captured
// request cannot be replayed for long.
const DefaultTolerance = 5 * time.Minute

// ErrInvalidSignature is wrapped by every error Verify returns.
var ErrInvalidSignature = errors.New("invalid webhook signature")

// Sign returns the Touchpoint-Signature header value for body sent at t:
//
//	t=<unix seconds>,v1=<hex HMAC-SHA256 with secret of "<unix seconds>.<body>">
//
// The time is part of what is signed, so a receiver that rejects old
// times (Verify) cannot be fed a recorded request later.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a Touchpoint-Signature header against the body as
// received (the raw bytes, before any JSON decoding) and the secret. It
// fails when the header is malformed, when no v1 signature matches, or
// when the signed time is more than tolerance away from now, either way.
// Several v1 entries are accepted, any one matching, so a sender may sign
// with an old and a new secret while the receiver rotates; keys other
// than t and v1 are ignored, for schemes added later.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("%w: the secret is shorter than %d bytes", ErrInvalidSignature, MinSecretBytes)
	}
	if tolerance <= 0 {
		return fmt.Errorf("%w: tolerance must be positive, got %s", ErrInvalidSignature, tolerance)
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header: %q is not key=value", ErrInvalidSignature, clip(part))
		}
		switch key {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: malformed header: more than one t", ErrInvalidSignature)
			}
			if !allDigits(value) {
				return fmt.Errorf("%w: malformed header: t=%q is not unix seconds", ErrInvalidSignature, clip(value))
			}
			ts = value
		case "v1":
			sig, err := hex.DecodeString(value)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: malformed header: v1 is not %d hex digits", ErrInvalidSignature, 2*sha256.Size)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header: want t=<unix seconds>,v1=<hex>", ErrInvalidSignature)
	}
	want := mac(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		// Every entry is compared, in constant time, so the time taken
		// says nothing about which bytes matched.
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("%w: no v1 signature matches the body", ErrInvalidSignature)
	}
	// allDigits bounds the length, so this cannot fail.
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed header: t=%q: %w", ErrInvalidSignature, ts, err)
	}
	if skew := now.Sub(time.Unix(sec, 0)).Abs(); skew > tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now, beyond the tolerance of %s",
			ErrInvalidSignature, time.Unix(sec, 0).UTC().Format(time.RFC3339), skew.Truncate(time.Second), tolerance)
	}
	return nil
}

// allDigits reports whether s is a decimal number short enough for an
// int64, without the sign strconv would allow.
func allDigits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens outside input quoted in an error.
func clip(s string) string {
	const n = 40
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
