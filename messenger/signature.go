package messenger

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
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
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
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: want %d hex-encoded bytes after %s", ErrSignatureInvalid, sha256.Size, signaturePrefix)
	}
	match := false
	for _, s := range secrets {
		if len(s) > 0 && hmac.Equal(got, mac(s, body)) {
			match = true
		}
	}
	if !match {
		return fmt.Errorf("%w: does not match the body", ErrSignatureInvalid)
	}
	return nil
}

// AppSecretProof returns the appsecret_proof and appsecret_time query
// parameters for a Graph API call made at t: the hex HMAC-SHA256, keyed by
// the app secret, of token + "|" + the Unix time in seconds.
func AppSecretProof(secret []byte, token string, t time.Time) (proof, timeStr string) {
	timeStr = strconv.FormatInt(t.Unix(), 10)
	return hex.EncodeToString(mac(secret, []byte(token+"|"+timeStr))), timeStr
}

func mac(secret, msg []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(msg)
	return h.Sum(nil)
}
