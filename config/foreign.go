package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// This file recognises configurations written for something else: a
// Traefik 1.x file, a Traefik v2/v3 file in YAML or JSON, and keys for
// features tollgate does not have. Each gets one problem pointing at what
// to do, instead of a list of unknown keys or a raw TOML syntax error.

// traefikV1Threshold is how many distinct Traefik 1.x markers make a file
// a Traefik 1.x configuration. Every marker is a key tollgate does not
// know, so a tollgate file with one typo has at most one of them; real 1.x
// files have several (defaultEntryPoints, [file], [backends], [frontends],
// an [acme] storage, a [entryPoints.X.redirect]).
const traefikV1Threshold = 2

// traefikV1Sections are top-level keys only Traefik 1.x has: its global
// defaults, its dynamic configuration, and its provider sections (Traefik
// v2 moved providers below [providers]).
var traefikV1Sections = []string{
	"defaultEntryPoints", "frontends", "backends", "file",
	"consul", "consulCatalog", "etcd", "zookeeper", "boltdb", "kubernetes", "docker",
	"marathon", "mesos", "rancher", "ecs", "eureka", "dynamodb", "servicefabric", "rest", "web",
}

// traefikV1Globals are other top-level keys of Traefik 1.x; together they
// count as one marker, since a single one may be a typo.
var traefikV1Globals = []string{
	"logLevel", "graceTimeOut", "traefikLog", "accessLogsFile", "traefikLogsFile", "lifeCycle",
	"respondingTimeouts", "checkNewVersion", "InsecureSkipVerify", "insecureSkipVerify",
	"maxIdleConnsPerHost", "idleTimeout", "providersThrottleDuration",
}

// traefikV1EntryPointKeys are keys of a Traefik 1.x entry point that
// tollgate's entry points do not have (tollgate puts TLS and redirections
// below http). proxyProtocol is not one: tollgate's has 1.x's keys.
var traefikV1EntryPointKeys = []string{"redirect", "tls", "whiteList", "whitelistSourceRange", "auth", "compress"}

// traefikV1ACMEKeys are keys of Traefik 1.x's [acme] that tollgate's does
// not have; onDemand counts only as a boolean (tollgate's is a table).
var traefikV1ACMEKeys = []string{"storage", "entryPoint", "acmeLogging", "onDemand"}

// traefikV1Markers lists the Traefik 1.x markers found in a decoded TOML
// document, each once.
func traefikV1Markers(tree map[string]any) []string {
	var found []string
	for _, k := range traefikV1Sections {
		if _, ok := tree[k]; ok {
			found = append(found, k)
		}
	}
	for _, k := range traefikV1Globals {
		if _, ok := tree[k]; ok {
			found = append(found, "global "+k)
			break
		}
	}
	if acme, ok := tree["acme"].(map[string]any); ok {
		for _, k := range traefikV1ACMEKeys {
			v, has := acme[k]
			if _, isTable := v.(map[string]any); has && !(k == "onDemand" && isTable) {
				found = append(found, "acme."+k)
				break
			}
		}
	}
	if eps, ok := tree["entryPoints"].(map[string]any); ok {
	entryPoints:
		for _, name := range sortedKeys(eps) {
			ep, _ := eps[name].(map[string]any)
			for _, k := range traefikV1EntryPointKeys {
				if _, has := ep[k]; has {
					found = append(found, "entryPoints."+name+"."+k)
					break entryPoints
				}
			}
		}
	}
	if http, ok := tree["http"].(map[string]any); ok {
		routers, _ := http["routers"].(map[string]any)
		for _, name := range sortedKeys(routers) {
			r, _ := routers[name].(map[string]any)
			if s, ok := r["rule"].(string); ok && rule.IsTraefikV1(s) {
				found = append(found, "a 1.x rule")
				break
			}
		}
	}
	return found
}

// traefikV1Problem is the one problem reported for a Traefik 1.x file.
func traefikV1Problem(name string) Problem {
	return Problem{Where: name, Message: fmt.Sprintf(
		"this is a Traefik 1.x configuration: convert it with `tollgate migrate traefik-v1 %s --out tollgate.toml` (see docs/migration.md)", name)}
}

// foreignFormat names the format of a document that is not valid TOML
// when its name or its content says it is YAML or JSON, else "".
func foreignFormat(name string, doc []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yml", ".yaml":
		return "YAML"
	case ".json":
		return "JSON"
	}
	trimmed := bytes.TrimLeft(doc, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return "JSON"
	}
	yamlish, tomlish := 0, 0
	for line := range bytes.Lines(doc) {
		l := bytes.TrimSpace(line)
		switch {
		case len(l) == 0 || l[0] == '#':
		case bytes.Equal(l, []byte("---")):
			yamlish += 2
		case yamlKey.Match(l), bytes.HasPrefix(l, []byte("- ")):
			yamlish++
		case l[0] == '[', tomlKey.Match(l):
			tomlish++
		}
	}
	if yamlish > tomlish {
		return "YAML"
	}
	return ""
}

var (
	yamlKey = regexp.MustCompile(`^["']?[A-Za-z0-9_.-]+["']?:(\s|$)`)
	tomlKey = regexp.MustCompile(`^["']?[A-Za-z0-9_.-]+["']?\s*=`)
)

// foreignFormatProblem is the one problem reported for a YAML or JSON
// document.
func foreignFormatProblem(name, format string) Problem {
	example := "`http:` with `routers:` and `web:` below it becomes the table [http.routers.web], and `rule: Host(...)` becomes rule = \"Host(...)\""
	if format == "JSON" {
		example = "{\"http\": {\"routers\": {\"web\": {…}}}} becomes the table [http.routers.web], and \"rule\": \"…\" becomes rule = \"…\""
	}
	return Problem{Where: name, Message: fmt.Sprintf(
		"tollgate reads TOML, and this is %s: write the same keys in TOML: %s (see docs/configuration.md)", format, example)}
}

// unsupportedHint explains keys for features tollgate does not have (yet),
// which Traefik users may bring along; path is the key's path, the key
// last. It returns "" for other keys.
func unsupportedHint(path []string, key string) string {
	parent := path[:len(path)-1]
	switch {
	case len(parent) == 0 && key == "serversTransport":
		return "a static default [serversTransport] is not supported: define [http.serversTransports.NAME] and name it in each loadBalancer's serversTransport"
	case len(parent) == 0 && key == "udp":
		return "[udp] is not supported (yet): tollgate proxies HTTP and TCP only; remove it"
	case len(parent) == 3 && parent[0] == "http" && parent[1] == "middlewares" && key == "plugin":
		return "plugins are not supported: tollgate runs no third-party code; remove the middleware and its uses"
	case len(parent) == 3 && parent[0] == "http" && parent[1] == "middlewares" && (key == "grpcWeb" || key == "digestAuth"):
		return fmt.Sprintf("the %s middleware is not supported (yet); remove it and its uses", key)
	case len(parent) == 3 && parent[0] == "http" && parent[1] == "serversTransports":
		return serversTransportHint(key)
	case len(parent) == 3 && parent[0] == "tcp" && parent[1] == "serversTransports" && key == "spiffe",
		len(parent) == 4 && parent[0] == "tcp" && parent[1] == "serversTransports" && parent[3] == "tls" && key == "peerCertURI":
		return serversTransportHint(key)
	case len(parent) == 3 && (parent[0] == "http" || parent[0] == "tcp") && parent[1] == "routers" && key == "ruleSyntax":
		return "tollgate reads rules in Traefik v3's syntax only; remove ruleSyntax (a rule in v2's syntax is refused with its v3 spelling)"
	case len(parent) == 4 && parent[0] == "tcp" && parent[1] == "services" && parent[3] == "loadBalancer" && (key == "proxyProtocol" || key == "terminationDelay"):
		return fmt.Sprintf("as in Traefik v3, %s belongs to a servers transport: set it in [tcp.serversTransports.NAME] and name that in the loadBalancer's serversTransport", key)
	case len(parent) == 4 && parent[0] == "http" && parent[1] == "serversTransports" && parent[3] == "forwardingTimeouts" && (key == "readTimeout" || key == "writeTimeout"):
		return fmt.Sprintf("%s is not supported (yet): responseHeaderTimeout bounds the wait for a server's response headers; remove it", key)
	}
	return ""
}

// serversTransportHint explains the keys of a Traefik serversTransport
// that tollgate lacks.
func serversTransportHint(key string) string {
	switch key {
	case "peerCertURI", "peerCertSANs", "spiffe":
		return fmt.Sprintf("%s is not supported (yet): tollgate verifies a server's certificate by rootCAs and by the DNS name or IP address it names (serverName, else the host of the server's URL), not by a URI or SPIFFE identity; remove it", key)
	case "minVersion", "maxVersion", "cipherSuites":
		return fmt.Sprintf("%s is not supported (yet): connections to servers use TLS 1.2 or later with Go's default cipher suites; remove it", key)
	}
	return ""
}
