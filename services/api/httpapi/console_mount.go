package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/services/api/console"
)

// mountConsole serves the operator console (package console) under
// console.Prefix. The console calls this very echo instance for every
// page and action, so its requests pass the API's authentication, role
// checks, validation and audit like any client's. Its routes are not in
// the route table: they are pages, not API routes, and need no role
// (each API call they make is checked).
func (s *Server) mountConsole(e *echo.Echo) error {
	m := hmac.New(sha256.New, s.tokens.Secret)
	m.Write([]byte("insightops console csrf key"))
	ui, err := console.New(console.Options{API: e, Verify: s.tokens.Verify, CSRFKey: m.Sum(nil), Log: s.log})
	if err != nil {
		return fmt.Errorf("httpapi: console: %w", err)
	}
	h := echo.WrapHandler(ui)
	e.GET(console.Prefix, h)
	e.Any(console.Prefix+"/*", h)
	return nil
}
