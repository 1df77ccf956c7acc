// Package natsperm holds the tests that keep the deploy manifests honest:
// a nats-server started from deploy/nats/nats-server.conf proves that each
// service's NATS user can do its job through the real code paths and
// nothing more, and the environment of docker-compose.yml and deploy/k8s
// is checked against shared/config's variable table. It lives in the
// all-in-one module because it imports every service.
package natsperm
