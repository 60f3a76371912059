package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// The answer to an accepted webhook, as the Messenger Platform's samples
// give it, in values made once: gin's c.String boxes a renderer on every
// request.
var (
	ackBody        = []byte("EVENT_RECEIVED")
	ackContentType = []string{"text/plain; charset=utf-8"}
)

// ack answers an accepted webhook: 200, EVENT_RECEIVED, as
// c.String(http.StatusOK, "EVENT_RECEIVED") does.
func ack(c *gin.Context) {
	c.Writer.Header()["Content-Type"] = ackContentType
	c.Status(http.StatusOK)
	_, _ = c.Writer.Write(ackBody)
}
