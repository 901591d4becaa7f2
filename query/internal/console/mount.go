package console

import (
	"net/http"

	"github.com/flexipack/cutover/query/internal/api"
	"github.com/flexipack/cutover/query/internal/cutoverapi"
)

// Mount adds the cutover API (behind the query API's bearer tokens, with
// its OpenAPI fragment) and the console's static files (public: they hold
// no data; every number comes from the API) to the query API.
func Mount(a *api.API, cut *cutoverapi.API) {
	routes := make([]api.Route, 0, len(cut.Routes()))
	for _, r := range cut.Routes() {
		routes = append(routes, api.Route{Pattern: r.Pattern, Handler: r.Handler})
	}
	a.Mount(api.RouteGroup{Name: "cutover", Routes: routes, Paths: cutoverapi.Paths(), Schemas: cutoverapi.Schemas()})
	h := Handler()
	a.Mount(api.RouteGroup{Name: "console", Routes: []api.Route{
		{Pattern: "GET /{$}", Handler: h, Public: true},
		{Pattern: "GET /assets/", Handler: h, Public: true},
		{Pattern: "GET /favicon.ico", Handler: http.Handler(h), Public: true},
	}})
}
