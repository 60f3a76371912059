package sandbox

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gin-gonic/gin"
)

// static holds the playground page: plain HTML, CSS and JavaScript, no
// build step and nothing fetched from elsewhere.
//
//go:embed static
var static embed.FS

// mountPage serves the playground page at GET / and its files under
// /sandbox/static/.
func (e *Emulator) mountPage(r gin.IRouter) {
	files, err := fs.Sub(static, "static")
	if err != nil { // the directory is embedded: cannot happen
		return
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return
	}
	r.GET("/", func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", index)
	})
	r.GET("/sandbox/static/*file", gin.WrapH(http.StripPrefix("/sandbox/static", http.FileServerFS(files))))
}
