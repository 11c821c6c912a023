package delivery_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/delivery"
)

func TestSignFormat(t *testing.T) {
	// Computed apart from this package (HMAC-SHA256 of "<t>.<body>", hex),
	// as a receiver in another language would.
	got := delivery.Sign([]byte("whsec_0123456789abcdef"), time.Unix(1700000000, 0), []byte(`{"a":1}`))
	const want = "t=1700000000,v1=9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2"
	if got != want {
		t.Fatalf("Sign() = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte(testSecret)
	body := []byte(`{"firing":"cart|c-000042|1700000000","touchpoint":"cart_coupon_10"}`)
	now := time.Unix(1700000000, 0)
	good := delivery.Sign(secret, now, body)
	_, goodSig, _ := strings.Cut(good, ",")
	other := delivery.Sign([]byte("another-secret-of-16+"), now, body)
	_, otherSig, _ := strings.Cut(other, ",")

	tests := []struct {
		name      string
		secret    []byte
		header    string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      string // in the error; empty for valid
	}{
		{"valid", secret, good, body, now, delivery.DefaultTolerance, ""},
		{"valid with spaces", secret, strings.ReplaceAll(good, ",", ", "), body, now, delivery.DefaultTolerance, ""},
		{"valid a little later", secret, good, body, now.Add(5 * time.Minute), delivery.DefaultTolerance, ""},
		{"valid a little earlier", secret, good, body, now.Add(-5 * time.Minute), delivery.DefaultTolerance, ""},
		{"rotation: second v1 matches", secret, good + "," + otherSig, body, now, time.Minute, ""},
		{"rotation: first v1 matches", secret, "t=1700000000," + otherSig + "," + goodSig, body, now, time.Minute, ""},
		{"unknown scheme ignored", secret, good + ",v2=zzz", body, now, time.Minute, ""},
		{"wrong secret", []byte("wrong-secret-0123456789"), good, body, now, time.Minute, "no v1 signature matches"},
		{"tampered body", secret, good, []byte(`{"firing":"cart|c-000043|1700000000","touchpoint":"cart_coupon_10"}`), now, time.Minute, "no v1 signature matches"},
		{"other time, same signature", secret, "t=1700000001," + goodSig, body, now, time.Minute, "no v1 signature matches"},
		{"old", secret, good, body, now.Add(5*time.Minute + time.Second), delivery.DefaultTolerance, "beyond the tolerance of 5m0s"},
		{"from the future", secret, good, body, now.Add(-time.Hour), delivery.DefaultTolerance, "beyond the tolerance"},
		{"empty", secret, "", body, now, time.Minute, "malformed header"},
		{"garbage", secret, "garbage", body, now, time.Minute, "malformed header"},
		{"no t", secret, goodSig, body, now, time.Minute, "malformed header"},
		{"no v1", secret, "t=1700000000", body, now, time.Minute, "malformed header"},
		{"two t", secret, "t=1700000000," + good, body, now, time.Minute, "more than one t"},
		{"signed t", secret, "t=+1700000000," + goodSig, body, now, time.Minute, "is not unix seconds"},
		{"negative t", secret, "t=-1," + goodSig, body, now, time.Minute, "is not unix seconds"},
		{"huge t", secret, "t=99999999999999999999," + goodSig, body, now, time.Minute, "is not unix seconds"},
		{"short v1", secret, "t=1700000000,v1=abcd", body, now, time.Minute, "v1 is not 64 hex digits"},
		{"non-hex v1", secret, "t=1700000000,v1=" + strings.Repeat("z", 64), body, now, time.Minute, "v1 is not 64 hex digits"},
		{"trailing comma", secret, good + ",", body, now, time.Minute, "malformed header"},
		{"short secret", []byte("short"), good, body, now, time.Minute, "shorter than 16 bytes"},
		{"no tolerance", secret, good, body, now, 0, "tolerance must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := delivery.Verify(tc.secret, tc.header, tc.body, tc.now, tc.tolerance)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify() = %v, want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, delivery.ErrInvalidSignature) {
				t.Errorf("Verify() = %v, does not wrap ErrInvalidSignature", err)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte(testSecret)
	now := time.Unix(1700000000, 0)
	f.Add(delivery.Sign(secret, now, []byte(`{}`)), []byte(`{}`))
	f.Add("t=1700000000,v1=00", []byte(`{}`))
	f.Add("t=,v1=", []byte(nil))
	f.Add(",,,=,=", []byte("x"))
	f.Add("t=1700000000,t=1700000000,v1="+strings.Repeat("ab", 32), []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		// Outside input never panics.
		_ = delivery.Verify(secret, header, body, now, time.Hour)
		// What Sign writes always verifies.
		if err := delivery.Verify(secret, delivery.Sign(secret, now, body), body, now, time.Second); err != nil {
			t.Errorf("Verify(Sign(%q)) = %v", body, err)
		}
	})
}
