package dashboard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tollgate-proxy/tollgate/dashboard"
)

// The dashboard goes beside the JSON API it reads, on one mux: its path
// without the slash redirects, its files are served under the prefix.
func ExampleHandler() {
	mux := http.NewServeMux()
	h := dashboard.Handler()
	mux.Handle(dashboard.Path, h)
	mux.Handle(dashboard.Prefix, h)

	for _, path := range []string{"/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/missing.js"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if loc := w.Header().Get("Location"); loc != "" {
			fmt.Println(path, w.Code, "to", loc)
			continue
		}
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// /dashboard 301 to /dashboard/
	// /dashboard/ 200 text/html; charset=utf-8
	// /dashboard/app.js 200 text/javascript; charset=utf-8
	// /dashboard/missing.js 404 text/plain; charset=utf-8
}
