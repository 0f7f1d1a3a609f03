package conformance

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// echoAnswer is what the suite's backends answer: the request as they
// saw it and which pod saw it. The suite decodes it to check where a
// request went and what reached the backend.
type echoAnswer struct {
	Path      string              `json:"path"`
	Host      string              `json:"host"`
	Method    string              `json:"method"`
	Proto     string              `json:"proto"`
	Headers   map[string][]string `json:"headers"`
	Namespace string              `json:"namespace"`
	Ingress   string              `json:"ingress"`
	Service   string              `json:"service"`
	Pod       string              `json:"pod"`
}

// echoHandler answers as the suite's echo backend of pod namespace/name:
// /health with OK, /status/NNN with that status, anything else with the
// request echoed as JSON. The request header X-Echo-Set-Header
// ("Name: value, Other: value") asks for headers in the answer.
func echoHandler(namespace, pod string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			_, _ = w.Write([]byte("OK"))
			return
		}
		if code, ok := strings.CutPrefix(r.RequestURI, "/status/"); ok {
			n, err := strconv.Atoi(code)
			if err != nil || len(code) != 3 {
				n = http.StatusBadRequest
			}
			w.WriteHeader(n)
			return
		}
		if d := r.URL.Query().Get("delay"); d != "" {
			if delay, err := time.ParseDuration(d); err == nil {
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					return
				}
			}
		}
		for _, list := range r.Header.Values("X-Echo-Set-Header") {
			for kv := range strings.SplitSeq(list, ",") {
				name, value, _ := strings.Cut(strings.TrimSpace(kv), ":")
				if name == "" {
					continue
				}
				if old := w.Header().Get(name); old != "" {
					w.Header().Set(name, old+","+strings.TrimSpace(value))
				} else {
					w.Header().Set(name, strings.TrimSpace(value))
				}
			}
		}
		b, err := json.MarshalIndent(echoAnswer{
			Path: r.RequestURI, Host: r.Host, Method: r.Method, Proto: r.Proto, Headers: r.Header,
			Namespace: namespace, Pod: pod,
		}, "", " ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	})
}

// echoPorts are the ports every pod's echo server listens on: HTTP/1.1
// and h2c on both (the base manifests' Services point at 3000 and, for
// h2c, 3001).
var echoPorts = []int{3000, 3001}

// echoServer is one pod's echo backend.
type echoServer struct {
	servers []*http.Server
	wg      sync.WaitGroup
}

// startEcho serves pod namespace/name at ip on echoPorts.
func startEcho(ip net.IP, namespace, name string) (*echoServer, error) {
	e := &echoServer{}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	for _, port := range echoPorts {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			e.close()
			return nil, err
		}
		srv := &http.Server{Handler: echoHandler(namespace, name), Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
		e.servers = append(e.servers, srv)
		// Serve returns when close shuts the server down.
		e.wg.Go(func() { _ = srv.Serve(l) })
	}
	return e, nil
}

func (e *echoServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range e.servers {
		if s.Shutdown(ctx) != nil {
			_ = s.Close()
		}
	}
	e.wg.Wait()
}
