package messenger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SignatureHeader is the HTTP header that carries a webhook's signature.
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// Errors returned (possibly wrapped) by VerifySignature.
var (
	// ErrSignatureMissing means the request carried no signature.
	ErrSignatureMissing = errors.New("messenger: webhook signature missing")
	// ErrSignatureInvalid means the signature is malformed or does not
	// match the body under any configured app secret.
	ErrSignatureInvalid = errors.New("messenger: webhook signature invalid")
)

// Sign returns the X-Hub-Signature-256 value of body under the app secret:
// "sha256=" followed by the lowercase hex HMAC-SHA256.
func Sign(secret []byte, body []byte) string {
	m := getMAC(secret)
	defer m.release()
	var out [len(signaturePrefix) + 2*sha256.Size]byte
	copy(out[:], signaturePrefix)
	hex.Encode(out[len(signaturePrefix):], m.sum(body))
	return string(out[:])
}

// VerifySignature checks an X-Hub-Signature-256 header value against the
// raw request body. Several secrets may be given so that a rotated app
// secret keeps working; empty secrets are ignored, and with no usable secret
// every signature is invalid. Comparison is constant-time. The error is
// ErrSignatureMissing or wraps ErrSignatureInvalid.
func VerifySignature(body []byte, header string, secrets ...[]byte) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrSignatureMissing
	}
	prefix, hexSum, ok := strings.Cut(header, "=")
	if !ok || !strings.EqualFold(prefix+"=", signaturePrefix) {
		return fmt.Errorf("%w: want %s<hex>", ErrSignatureInvalid, signaturePrefix)
	}
	// The header's hex is decoded into a fixed array: no allocation.
	var got [sha256.Size]byte
	if len(hexSum) != 2*sha256.Size {
		return errBadSignatureHex()
	}
	if _, err := hex.Decode(got[:], []byte(hexSum)); err != nil {
		return errBadSignatureHex()
	}
	match := false
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		// Every secret is tried, whichever matches: the time taken does
		// not tell which secret signed.
		m := getMAC(s)
		if hmac.Equal(got[:], m.sum(body)) {
			match = true
		}
		m.release()
	}
	if !match {
		return fmt.Errorf("%w: does not match the body", ErrSignatureInvalid)
	}
	return nil
}

func errBadSignatureHex() error {
	return fmt.Errorf("%w: want %d hex-encoded bytes after %s", ErrSignatureInvalid, sha256.Size, signaturePrefix)
}

// AppSecretProof returns the appsecret_proof and appsecret_time query
// parameters for a Graph API call made at t: the hex HMAC-SHA256, keyed by
// the app secret, of token + "|" + the Unix time in seconds.
func AppSecretProof(secret []byte, token string, t time.Time) (proof, timeStr string) {
	timeStr = strconv.FormatInt(t.Unix(), 10)
	m := getMAC(secret)
	defer m.release()
	return hex.EncodeToString(m.sum([]byte(token + "|" + timeStr))), timeStr
}

// pooledMAC is an HMAC-SHA256 keyed by one secret, with room for its sum,
// taken from the secret's pool: hmac.New costs several allocations and
// two hash states, on every webhook.
type pooledMAC struct {
	h    hash.Hash
	pool *sync.Pool // nil when the secret has no pool
	buf  [sha256.Size]byte
}

// sum returns the HMAC of msg, in the MAC's own buffer: valid until
// release.
func (m *pooledMAC) sum(msg []byte) []byte {
	m.h.Reset()
	m.h.Write(msg)
	return m.h.Sum(m.buf[:0])
}

// release gives the MAC back to its pool.
func (m *pooledMAC) release() {
	if m.pool != nil {
		m.pool.Put(m)
	}
}

// maxPooledSecrets bounds how many secrets get a pool of their own: a
// gateway has one app secret, or two while rotating it. MACs of further
// secrets are built for each use.
const maxPooledSecrets = 16

// macPools maps a secret to the pool of its MACs. The map is never
// changed once stored: a new secret stores a copy with it added, so that
// the lookup on every webhook takes no lock.
var macPools struct {
	mu    sync.Mutex // held by writers
	pools atomic.Pointer[map[string]*sync.Pool]
}

// getMAC returns an HMAC-SHA256 keyed by secret, from the secret's pool.
func getMAC(secret []byte) *pooledMAC {
	if p := macPool(secret); p != nil {
		return p.Get().(*pooledMAC)
	}
	return &pooledMAC{h: hmac.New(sha256.New, secret)}
}

// macPool returns the pool of secret's MACs, made on first use, or nil
// when maxPooledSecrets secrets have one already.
func macPool(secret []byte) *sync.Pool {
	if m := macPools.pools.Load(); m != nil {
		if p := (*m)[string(secret)]; p != nil {
			return p
		}
	}
	macPools.mu.Lock()
	defer macPools.mu.Unlock()
	var old map[string]*sync.Pool
	if m := macPools.pools.Load(); m != nil {
		old = *m
	}
	if p := old[string(secret)]; p != nil {
		return p
	}
	if len(old) >= maxPooledSecrets {
		return nil
	}
	key := string(secret) // a copy: the caller may change its slice
	p := &sync.Pool{}
	p.New = func() any { return &pooledMAC{h: hmac.New(sha256.New, []byte(key)), pool: p} }
	m := make(map[string]*sync.Pool, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[key] = p
	macPools.pools.Store(&m)
	return p
}
