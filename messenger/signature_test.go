package messenger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSignKnownVector(t *testing.T) {
	// The HMAC-SHA256 example vector published on Wikipedia's HMAC page.
	got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"))
	want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerifySignature(t *testing.T) {
	secret := []byte("current-app-secret")
	old := []byte("previous-app-secret")
	body := readTestdata(t, "text_message.json")
	good := Sign(secret, body)
	tests := []struct {
		name    string
		body    []byte
		header  string
		secrets [][]byte
		want    error
	}{
		{"right", body, good, [][]byte{secret}, nil},
		{"upper-case hex", body, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), [][]byte{secret}, nil},
		{"surrounding spaces", body, "  " + good + " ", [][]byte{secret}, nil},
		{"rotated: signed with old secret", body, Sign(old, body), [][]byte{secret, old}, nil},
		{"rotated: signed with new secret", body, good, [][]byte{old, secret}, nil},
		{"missing", body, "", [][]byte{secret}, ErrSignatureMissing},
		{"blank", body, "   ", [][]byte{secret}, ErrSignatureMissing},
		{"wrong secret", body, Sign([]byte("attacker"), body), [][]byte{secret}, ErrSignatureInvalid},
		{"old secret no longer configured", body, Sign(old, body), [][]byte{secret}, ErrSignatureInvalid},
		{"body changed", append([]byte(" "), body...), good, [][]byte{secret}, ErrSignatureInvalid},
		{"sha1 header value", body, "sha1=0123456789abcdef0123456789abcdef01234567", [][]byte{secret}, ErrSignatureInvalid},
		{"no prefix", body, strings.TrimPrefix(good, "sha256="), [][]byte{secret}, ErrSignatureInvalid},
		{"not hex", body, "sha256=zz" + good[9:], [][]byte{secret}, ErrSignatureInvalid},
		{"truncated", body, good[:len(good)-2], [][]byte{secret}, ErrSignatureInvalid},
		{"no secrets", body, good, nil, ErrSignatureInvalid},
		{"empty secret never verifies", body, Sign(nil, body), [][]byte{{}}, ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.body, tt.header, tt.secrets...)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), string(secret)) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

// TestVerifySignatureNonASCII checks that non-ASCII bodies verify over their
// raw bytes, whether Meta sent the text as UTF-8 or as \u escapes, and shows
// why: encoding/json re-encodes escapes as UTF-8, which no longer matches.
func TestVerifySignatureNonASCII(t *testing.T) {
	secret := []byte("app-secret")
	for _, file := range []string{"non_ascii_raw.json", "non_ascii_escaped.json"} {
		t.Run(file, func(t *testing.T) {
			raw := readTestdata(t, file)
			sig := Sign(secret, raw)
			if err := VerifySignature(raw, sig, secret); err != nil {
				t.Fatalf("raw body: %v", err)
			}
			w, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			reencoded, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			err = VerifySignature(reencoded, sig, secret)
			if escaped := strings.Contains(string(raw), `\u`); escaped && !errors.Is(err, ErrSignatureInvalid) {
				t.Errorf("re-encoded escaped body verified (err %v)", err)
			}
		})
	}
}

func TestAppSecretProof(t *testing.T) {
	secret, token := []byte("app-secret"), "EAAB-page-token"
	at := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	proof, ts := AppSecretProof(secret, token, at)
	if ts != "1785585600" {
		t.Errorf("time = %s, want 1785585600", ts)
	}
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(token + "|1785585600"))
	if want := hex.EncodeToString(h.Sum(nil)); proof != want {
		t.Errorf("proof = %s, want %s", proof, want)
	}
}

// TestVerifySignatureRejectsEveryWrongSignature tries hex of every length
// up to one past a SHA-256's, and the right signature with each hex digit
// changed: only the right signature verifies, whatever the pooled MACs
// computed before.
func TestVerifySignatureRejectsEveryWrongSignature(t *testing.T) {
	secret := []byte("pooled-secret")
	body := []byte(`{"object":"page","entry":[]}`)
	good := Sign(secret, body)
	hexSum := strings.TrimPrefix(good, signaturePrefix)
	for n := 0; n <= len(hexSum)+2; n++ {
		header := signaturePrefix + hexSum[:min(n, len(hexSum))] + strings.Repeat("a", max(0, n-len(hexSum)))
		var want error = ErrSignatureInvalid
		if n == len(hexSum) {
			want = nil
		}
		err := VerifySignature(body, header, secret)
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("%d hex digits: VerifySignature = %v, want %v", n, err, want)
		}
	}
	for i := range len(hexSum) {
		b := []byte(hexSum)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		if err := VerifySignature(body, signaturePrefix+string(b), secret); !errors.Is(err, ErrSignatureInvalid) {
			t.Errorf("digit %d changed: VerifySignature = %v, want %v", i, err, ErrSignatureInvalid)
		}
		// The pool's MAC that saw the wrong one still verifies the right one.
		if err := VerifySignature(body, good, secret); err != nil {
			t.Fatalf("after digit %d: the right signature: %v", i, err)
		}
	}
}

// TestVerifySignatureAllocatesNothing guards the webhook's hot path: a
// valid signature is checked with the pooled MACs, without allocating.
func TestVerifySignatureAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items: counts do not hold")
	}
	secret, old := []byte("current"), []byte("previous")
	body := readTestdata(t, "text_message.json")
	sig := Sign(secret, body)
	allocs := testing.AllocsPerRun(100, func() {
		if err := VerifySignature(body, sig, old, secret); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("VerifySignature allocates %.0f times, want 0", allocs)
	}
}

// TestSignaturePoolsConcurrently signs and verifies from many goroutines
// with two secrets, so that -race sees the pools shared; every result must
// be the one a fresh hmac.New gives.
func TestSignaturePoolsConcurrently(t *testing.T) {
	secrets := [][]byte{[]byte("concurrent-a"), []byte("concurrent-b")}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				secret, other := secrets[(g+i)%2], secrets[(g+i+1)%2]
				body := []byte(strconv.Itoa(g*1000 + i))
				h := hmac.New(sha256.New, secret)
				h.Write(body)
				want := signaturePrefix + hex.EncodeToString(h.Sum(nil))
				if got := Sign(secret, body); got != want {
					t.Errorf("Sign = %s, want %s", got, want)
					return
				}
				if err := VerifySignature(body, want, other, secret); err != nil {
					t.Errorf("right signature: %v", err)
					return
				}
				if err := VerifySignature(body, want, other); !errors.Is(err, ErrSignatureInvalid) {
					t.Errorf("signature of another secret: %v, want %v", err, ErrSignatureInvalid)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSignatureWithManySecrets goes past the secrets that get a pool: the
// MACs of the others are built for each use and give the same results.
func TestSignatureWithManySecrets(t *testing.T) {
	body := []byte("many secrets")
	for i := range maxPooledSecrets + 4 {
		secret := []byte("many-" + strconv.Itoa(i))
		h := hmac.New(sha256.New, secret)
		h.Write(body)
		want := signaturePrefix + hex.EncodeToString(h.Sum(nil))
		if got := Sign(secret, body); got != want {
			t.Fatalf("secret %d: Sign = %s, want %s", i, got, want)
		}
		if err := VerifySignature(body, want, secret); err != nil {
			t.Fatalf("secret %d: %v", i, err)
		}
	}
}
