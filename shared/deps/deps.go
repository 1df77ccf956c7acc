package deps
import (
 _ "github.com/nats-io/nats.go/jetstream"
 _ "github.com/nats-io/nats-server/v2/server"
 _ "github.com/jackc/pgx/v5/stdlib"
 _ "modernc.org/sqlite"
 _ "github.com/labstack/echo/v4"
 _ "github.com/cenkalti/backoff/v4"
 _ "github.com/pressly/goose/v3"
 _ "github.com/golang-jwt/jwt/v5"
 _ "golang.org/x/crypto/bcrypt"
 _ "github.com/oklog/ulid/v2"
 _ "github.com/google/uuid"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "golang.org/x/time/rate"
)
