# One image with all six binaries (producer, consumer, backfill, migrate, query, alert);
# docker-compose.yml's `command:` picks one. Configured only through the same
# environment variables as the shell (AMQP_URL, PG_DSN, INFLUX_URL, …).
#
#   docker build -t flexipack/cutover:dev --build-arg VERSION=$(git describe --always) .
#   docker run --rm flexipack/cutover:dev consumer --help

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so code changes reuse the module download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/flexipack/cutover/shared/cliapp.Version=${VERSION}" \
      -o /out/ ./producer ./consumer ./backfill ./migrate ./query ./alert

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# The alert service's default rules (alert run --rules, ALERT_RULES).
COPY --from=build /src/alert/rules/default.yml /etc/alert/rules.yml
USER nonroot:nonroot
# /metrics, /-/healthy and /-/ready of long-running commands (HTTP_ADDR=:9100).
EXPOSE 9100
CMD ["consumer", "--help"]
