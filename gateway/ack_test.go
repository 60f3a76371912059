package gateway

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestAckAsString checks that ack answers byte for byte as
// c.String(http.StatusOK, "EVENT_RECEIVED") does, headers included.
func TestAckAsString(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	answer := func(write func(c *gin.Context)) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		write(c)
		return rec
	}
	got := answer(ack)
	want := answer(func(c *gin.Context) { c.String(http.StatusOK, "EVENT_RECEIVED") })
	if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
		t.Errorf("ack = %d %q %v, want %d %q %v", got.Code, got.Body, got.Header(), want.Code, want.Body, want.Header())
	}
	if got.Body.String() != "EVENT_RECEIVED" {
		t.Errorf("body %q", got.Body)
	}
}
