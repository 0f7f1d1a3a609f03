package migrate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Traefik 1.x read its static configuration from the file and from its
// command line, the flags overriding the file: --consul
// --consul.endpoint=10.0.0.5:8500 is the same as a [consul] section with
// that endpoint. A cluster whose store was given on the command line has
// no [consul] or [etcd] in its file, so converting the file alone loses
// the store (and with it, where the certificates are). applyArgs writes
// the flags into the decoded file before conversion, so that every step
// sees them as keys, and records their paths so that the report places
// them on the command line.

// argKind is how a flag's value is read.
type argKind int

const (
	argSection  argKind = iota // --consul: enables the section, true or false
	argString                  // --consul.endpoint=HOST:PORT
	argBool                    // --consul.watch, --consul.watch=false
	argList                    // --kubernetes.namespaces=a,b
	argDuration                // --kubernetes.throttleduration=2s, kept as written
)

// v1Args are the flags converted, with the spelling of their keys in the
// file. Flag names are matched ignoring case, as Traefik's were.
var v1Args = func() map[string]struct {
	path []string
	kind argKind
} {
	out := map[string]struct {
		path []string
		kind argKind
	}{}
	add := func(kind argKind, keys ...string) {
		for _, k := range keys {
			out[strings.ToLower(k)] = struct {
				path []string
				kind argKind
			}{strings.Split(k, "."), kind}
		}
	}
	for _, kv := range []string{"consul", "etcd"} {
		add(argSection, kv, kv+".tls")
		add(argString, kv+".endpoint", kv+".prefix", kv+".username", kv+".password", kv+".tls.ca", kv+".tls.cert", kv+".tls.key")
		add(argBool, kv+".watch", kv+".tls.insecureSkipVerify", kv+".tls.caOptional")
	}
	add(argBool, "etcd.useAPIV3")
	add(argSection, "kubernetes", "kubernetes.ingressEndpoint")
	add(argString, "kubernetes.endpoint", "kubernetes.token", "kubernetes.certAuthFilePath", "kubernetes.labelselector",
		"kubernetes.ingressClass", "kubernetes.ingressEndpoint.ip", "kubernetes.ingressEndpoint.hostname",
		"kubernetes.ingressEndpoint.publishedService", "kubernetes.filename")
	add(argBool, "kubernetes.disablePassHostHeaders", "kubernetes.enablePassTLSCert", "kubernetes.watch")
	add(argList, "kubernetes.namespaces")
	add(argDuration, "kubernetes.throttleDuration")
	add(argSection, "acme", "acme.tlsChallenge", "acme.httpChallenge", "acme.dnsChallenge")
	add(argString, "acme.storage", "acme.email", "acme.entryPoint", "acme.caServer", "acme.keyType",
		"acme.httpChallenge.entryPoint", "acme.dnsChallenge.provider")
	add(argBool, "acme.onHostRule", "acme.onDemand", "acme.acmeLogging")
	add(argDuration, "acme.dnsChallenge.delayBeforeCheck")
	add(argSection, "api", "ping", "metrics", "metrics.prometheus", "accessLog", "web")
	add(argString, "api.entryPoint", "ping.entryPoint", "metrics.prometheus.entryPoint", "accessLog.filePath",
		"accessLog.format", "web.address", "logLevel")
	add(argBool, "api.dashboard", "debug")
	add(argList, "defaultEntryPoints")
	add(argDuration, "graceTimeOut")
	// Global settings, converted or reported as in the file.
	add(argBool, "checkNewVersion", "sendAnonymousUsage", "insecureSkipVerify")
	add(argString, "providersThrottleDuration", "maxIdleConnsPerHost", "rootCAs", "traefikLogsFile")
	return out
}()

// applyArgs writes the flags into tree as keys of the file, and reports
// those it does not convert.
func (c *converter) applyArgs(tree map[string]any, args []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if i == 0 && (a == "traefik" || strings.HasSuffix(a, "/traefik")) {
			continue // the program, as in a container's command
		}
		if !strings.HasPrefix(a, "-") || strings.TrimLeft(a, "-") == "" {
			c.argItem(a, Unknown, "not a flag: Traefik 1.x's static configuration flags start with --; not converted", "remove it")
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		lname := strings.ToLower(name)
		// A flag without "=" takes the next argument as its value unless
		// it is a switch, as Traefik's flag parser did.
		takeNext := func() (string, bool) {
			if hasVal {
				return val, true
			}
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				return args[i], true
			}
			return "", false
		}
		spec, ok := v1Args[lname]
		switch {
		case lname == "configfile" || lname == "c":
			takeNext()
			c.argItem("--"+name, Converted, fmt.Sprintf("the file Traefik read: this conversion reads %s", c.name), "")
			continue
		case lname == "entrypoints":
			takeNext()
			c.argItem("--"+name, Unsupported, "entry points given on the command line are not converted",
				"write them as [entryPoints.NAME] in the file (address, tls, redirect) and convert again")
			continue
		case !ok:
			takeNext()
			c.argItem("--"+name, Unsupported, "not converted: only the flags of [consul], [etcd], [kubernetes], [acme], [api], [ping], [metrics], [accessLog], defaultEntryPoints, logLevel and debug are read from the command line",
				"write it into the file as its key and convert again")
			continue
		}
		var v any
		switch spec.kind {
		case argSection, argBool:
			on := true
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					c.argProblem(name, "%q is not true or false", truncate(val, 40))
					continue
				}
				on = b
			}
			if spec.kind == argBool {
				v = on
				break
			}
			if !on {
				c.argItem("--"+name, Unsupported, "a section switched off on the command line is not converted", "remove the section from the file instead")
				continue
			}
			v = map[string]any{}
		default:
			s, ok := takeNext()
			if !ok {
				c.argProblem(name, "needs a value (--%s=VALUE)", name)
				continue
			}
			v = s
			if spec.kind == argList {
				var list []any
				for _, e := range strings.Split(s, ",") {
					if e = strings.TrimSpace(e); e != "" {
						list = append(list, e)
					}
				}
				v = list
			}
		}
		if err := c.setArg(tree, spec.path, v); err != nil {
			c.argProblem(name, "%v", err)
		}
	}
}

// setArg sets the key at path to v, creating the tables above it. Keys
// that exist are matched ignoring case, as Traefik matched the file's; a
// section that exists is kept as it is.
func (c *converter) setArg(tree map[string]any, path []string, v any) error {
	cur := tree
	var at []string
	for i, seg := range path {
		k := seg
		for _, have := range slices.Sorted(maps.Keys(cur)) {
			if strings.EqualFold(have, seg) {
				k = have
				break
			}
		}
		at = append(at, k)
		last := i == len(path)-1
		if m, isMap := v.(map[string]any); last && isMap {
			if _, exists := cur[k].(map[string]any); exists {
				return nil
			}
			if _, exists := cur[k]; exists {
				return fmt.Errorf("the file's %s is not a table", dottedPath(at))
			}
			cur[k] = m
			c.fromArgs[pathKey(at)] = true
			return nil
		}
		if last {
			if _, isMap := cur[k].(map[string]any); isMap {
				return fmt.Errorf("the file's %s is a table, not a value", dottedPath(at))
			}
			cur[k] = v
			c.fromArgs[pathKey(at)] = true
			return nil
		}
		next, isMap := cur[k].(map[string]any)
		if !isMap {
			if _, exists := cur[k]; exists {
				return fmt.Errorf("the file's %s is not a table", dottedPath(at))
			}
			next = map[string]any{}
			cur[k] = next
			c.fromArgs[pathKey(at)] = true
		}
		cur = next
	}
	return nil
}

// argItem reports a flag that is not a key of the file.
func (c *converter) argItem(flag string, kind Kind, msg, advice string) {
	c.seq++
	c.items = append(c.items, Item{Where: c.argsName, Key: flag, Kind: kind, Message: msg, Advice: advice, seq: c.seq})
}

func (c *converter) argProblem(flag, format string, args ...any) {
	c.seq++
	c.problems = append(c.problems, Item{Where: c.argsName, Key: "--" + flag, Message: fmt.Sprintf(format, args...), seq: c.seq})
}

// SplitArgs splits a command line as a POSIX shell does, without
// expanding anything: words are separated by blanks, and quotes ('…',
// "…") and backslashes keep blanks in a word. It is how the flags Traefik
// ran with, copied from its command line or a container's args, become
// Options.Args.
func SplitArgs(s string) ([]string, error) {
	var (
		out   []string
		word  strings.Builder
		in    bool // a word has started (it may be empty: "")
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune("\"\\$`\n", rs[i+1]):
				i++
				if rs[i] != '\n' {
					word.WriteRune(rs[i])
				}
			default:
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\':
			if i+1 < len(rs) {
				i++
				if rs[i] != '\n' {
					word.WriteRune(rs[i])
					in = true
				}
			}
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if in {
				out = append(out, word.String())
				word.Reset()
				in = false
			}
		default:
			word.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("a quote is not closed")
	}
	if in {
		out = append(out, word.String())
	}
	return out, nil
}
