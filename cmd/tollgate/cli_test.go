package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
	"github.com/tollgate-proxy/tollgate/router"
)

var update = flag.Bool("update", false, "rewrite the golden help texts in testdata/help")

// commandPaths lists every command of the tree but cobra's hidden ones,
// as the words that run it.
func commandPaths() [][]string {
	root := newRoot(&app{stdout: io.Discard, stderr: io.Discard})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var out [][]string
	var visit func(c *cobra.Command, path []string)
	visit = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, s := range c.Commands() {
			if !s.Hidden {
				visit(s, append(slices.Clone(path), s.Name()))
			}
		}
	}
	visit(root, nil)
	return out
}

// TestHelpGolden: every command's help (-h) is on stdout, exit 0, as in
// testdata/help; "tollgate help CMD" prints the same. go test -update
// rewrites the files.
func TestHelpGolden(t *testing.T) {
	paths := commandPaths()
	if len(paths) < 20 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, path := range paths {
		name := strings.Join(append([]string{"tollgate"}, path...), "_")
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := tollgate(t, append(slices.Clone(path), "-h")...)
			if code != exitOK || stderr != "" || stdout == "" {
				t.Fatalf("-h: exit %d, stderr:\n%s", code, stderr)
			}
			file := filepath.Join("testdata", "help", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/tollgate -run TestHelpGolden -update)", err)
			}
			if stdout != string(want) {
				t.Errorf("help differs from %s (go test -update rewrites it):\n%s", file, stdout)
			}
			if len(path) == 0 {
				return
			}
			code, viaHelp, stderr := tollgate(t, append([]string{"help"}, path...)...)
			if code != exitOK || viaHelp != stdout || stderr != "" {
				t.Errorf("help %s: exit %d, differs from -h:\n%s%s", strings.Join(path, " "), code, viaHelp, stderr)
			}
		})
	}
}

// TestHelpContent: each command's help has its synopsis, examples and exit
// codes; the root's says once how the environment gives flags.
func TestHelpContent(t *testing.T) {
	for _, path := range commandPaths() {
		if len(path) > 0 && (path[0] == "completion" || path[0] == "help") {
			continue // cobra's own
		}
		_, out, _ := tollgate(t, append(slices.Clone(path), "--help")...)
		for _, want := range []string{"Usage:", "Examples:", "Exit codes:"} {
			if !strings.Contains(out, want) {
				t.Errorf("tollgate %s --help lacks %q:\n%s", strings.Join(path, " "), want, out)
			}
		}
		if n := strings.Count(out, "TOLLGATE_NODE_ID"); (len(path) == 0) != (n == 1) && !slices.Equal(path, []string{"serve"}) {
			t.Errorf("tollgate %s --help names TOLLGATE_NODE_ID %d times", strings.Join(path, " "), n)
		}
	}
}

// TestUsageErrors: a bad command line is said once, on stderr, with exit 2
// and what was probably meant.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"command", []string{"serv"}, "unknown command \"serv\" for \"tollgate\"\n\nDid you mean this?\n\tserve\n"},
		{"subcommand", []string{"certs", "lst"}, "unknown command \"lst\"\n\nDid you mean this?\n\tlist\n"},
		{"flag", []string{"certs", "list", "--konfig", "x.toml"}, "unknown flag: --konfig\n\nDid you mean this?\n\t--config\n"},
		{"flag with a value", []string{"storeconfig", "--dryrun"}, "unknown flag: --dryrun\n\nDid you mean this?\n\t--dry-run\n"},
		{"one dash", []string{"check", "-konfig", "x.toml"}, "Did you mean this?\n\t--config\n"},
		{"no subcommand", []string{"cluster"}, "name a subcommand: status"},
		{"help of no command", []string{"help", "certs", "lst"}, "unknown command \"lst\" for \"tollgate certs\"\n\nDid you mean this?\n\tlist\n"},
		{"completion alone", []string{"completion"}, "name a subcommand: bash, fish, powershell, zsh"},
		{"missing argument", []string{"certs", "show"}, "missing argument NAME"},
		{"bad output", []string{"version", "-o", "xml"}, `"xml": want table, json or yaml`},
		{"bad log level", []string{"version", "--log-level", "loud"}, `"--log-level" flag: "loud": use debug, info, warn or error`},
		{"bad log format", []string{"version", "--log-format", "xml"}, `"--log-format" flag: "xml": use text or json`},
		{"file twice", []string{"check", "a.toml", "--config", "b.toml"}, `unexpected argument "a.toml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tollgate(t, tc.args...)
			if code != exitUsage || stdout != "" {
				t.Fatalf("exit %d, want %d; stdout:\n%s", code, exitUsage, stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
			if n := strings.Count(stderr, "for usage."); n != 1 {
				t.Errorf("the error is printed %d times, want once:\n%s", n, stderr)
			}
		})
	}
	// Alone, tollgate prints its usage on stderr.
	if code, stdout, stderr := tollgate(t); code != exitUsage || stdout != "" || !strings.Contains(stderr, "Available Commands:") {
		t.Errorf("no command: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestHelpOnStdout: every way of asking for help prints it on stdout and
// exits 0.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"}, {"certs", "-h"}, {"certs", "help"}, {"certs", "list", "-h"},
		{"help", "certs", "list"}, {"kv", "get", "--help"}, {"serve", "-h"},
	} {
		code, stdout, stderr := tollgate(t, args...)
		if code != exitOK || stderr != "" || !strings.Contains(stdout, "Usage:") {
			t.Errorf("tollgate %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestOneDashFlags: long flags written with one dash, as the command line
// took them before it moved to cobra, still work; a value that starts
// with a dash is left alone.
func TestOneDashFlags(t *testing.T) {
	if code, stdout, stderr := tollgate(t, "check", "-config", "../../examples/single-node.toml", "-skip-files"); code != exitOK || !strings.Contains(stdout, "is valid") {
		t.Errorf("check -config FILE -skip-files: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, _ := tollgate(t, "certs", "list", "-help"); code != exitOK || !strings.Contains(stdout, "Usage:") {
		t.Errorf("certs list -help: exit %d\n%s", code, stdout)
	}
	for _, tc := range []struct{ in, want []string }{
		{[]string{"check", "-config", "a.toml"}, []string{"check", "--config", "a.toml"}},
		{[]string{"check", "-o", "json", "-config=a.toml"}, []string{"check", "-o", "json", "--config=a.toml"}},
		{[]string{"kv", "get", "--kv", "-prefix", "-prefix", "x"}, []string{"kv", "get", "--kv", "-prefix", "--prefix", "x"}},
		{[]string{"check", "--", "-config"}, []string{"check", "--", "-config"}},
		{[]string{"migrate", "traefik-v1", "-traefik-args", "-consul -consul.endpoint=x", "f"}, []string{"migrate", "traefik-v1", "--traefik-args", "-consul -consul.endpoint=x", "f"}},
	} {
		root := newRoot(&app{stdout: io.Discard, stderr: io.Discard})
		if got := longFlags(root, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("longFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestVersion: --version and version print the same line; -o json its
// parts.
func TestVersion(t *testing.T) {
	_, flagOut, _ := tollgate(t, "--version")
	code, cmdOut, _ := tollgate(t, "version")
	if code != exitOK || flagOut != cmdOut || !strings.HasPrefix(cmdOut, "tollgate ") {
		t.Fatalf("--version %q, version %q (exit %d)", flagOut, cmdOut, code)
	}
	var v versionInfo
	decodeOutput(t, []string{"version", "-o", "json"}, &v)
	if v.Version == "" || v.GoVersion == "" || v.OS == "" || v.Arch == "" {
		t.Errorf("version -o json: %+v", v)
	}
}

// TestEnvironment: TOLLGATE_<FLAG> gives a flag, the command line wins,
// and a bad value names the variable.
func TestEnvironment(t *testing.T) {
	bad := writeFile(t, "bad.toml", invalidConfig)
	t.Setenv("TOLLGATE_CONFIG", bad)
	if code, _, stderr := tollgate(t, "check"); code != exitInvalid || !strings.Contains(stderr, bad) {
		t.Errorf("check with TOLLGATE_CONFIG: exit %d, want %d:\n%s", code, exitInvalid, stderr)
	}
	if code, _, stderr := tollgate(t, "check", "--config", "../../examples/single-node.toml", "--skip-files"); code != exitOK {
		t.Errorf("--config does not win over TOLLGATE_CONFIG: exit %d:\n%s", code, stderr)
	}
	t.Setenv("TOLLGATE_SKIP_FILES", "yes please")
	code, _, stderr := tollgate(t, "check")
	if code != exitUsage || !strings.Contains(stderr, "TOLLGATE_SKIP_FILES") {
		t.Errorf("bad TOLLGATE_SKIP_FILES: exit %d, want %d:\n%s", code, exitUsage, stderr)
	}
	t.Setenv("TOLLGATE_SKIP_FILES", "true")
	t.Setenv("TOLLGATE_OUTPUT", "json")
	var res checkResult
	decodeOutputCode(t, []string{"check"}, &res, exitInvalid)
	if res.Valid || res.File != bad {
		t.Errorf("check with TOLLGATE_OUTPUT=json: %+v", res)
	}
	t.Setenv("TOLLGATE_OUTPUT", "xml")
	if code, _, stderr := tollgate(t, "version"); code != exitUsage || !strings.Contains(stderr, "TOLLGATE_OUTPUT") {
		t.Errorf("bad TOLLGATE_OUTPUT: exit %d, want %d and the variable named:\n%s", code, exitUsage, stderr)
	}
	t.Setenv("TOLLGATE_OUTPUT", "")
	t.Setenv("TOLLGATE_LOG_LEVEL", "loud")
	if code, _, stderr := tollgate(t, "version"); code != exitUsage || !strings.Contains(stderr, "TOLLGATE_LOG_LEVEL") {
		t.Errorf("bad TOLLGATE_LOG_LEVEL: exit %d:\n%s", code, stderr)
	}
}

// TestNewLogger: the root's log flags build the logger serve gets.
func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) {
		t.Errorf("json at warn wrote %q", got)
	}
	for _, bad := range [][2]string{{"xml", "info"}, {"text", "loud"}} {
		if _, err := newLogger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("newLogger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func decodeOutput(t *testing.T, args []string, v any) {
	t.Helper()
	decodeOutputCode(t, args, v, exitOK)
}

// decodeOutputCode runs args, wants exit code, and decodes stdout (JSON,
// or YAML with -o yaml) into v strictly: a field v lacks fails.
func decodeOutputCode(t *testing.T, args []string, v any, code int) {
	t.Helper()
	got, stdout, stderr := tollgate(t, args...)
	if got != code {
		t.Fatalf("tollgate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, stdout, stderr)
	}
	if slices.Contains(args, "yaml") {
		if err := yaml.UnmarshalStrict([]byte(stdout), v); err != nil {
			t.Fatalf("tollgate %s: %v:\n%s", strings.Join(args, " "), err, stdout)
		}
		return
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("tollgate %s: %v:\n%s", strings.Join(args, " "), err, stdout)
	}
}

// TestOutputFormats runs every command that has -o with -o json (and some
// with -o yaml) against the embedded store and Consul, and decodes what
// they print into the types docs/cli.md documents.
func TestOutputFormats(t *testing.T) {
	consul := testserver.Consul(t)
	for _, endpoint := range []string{"file:" + filepath.Join(t.TempDir(), "state.db"), "consul://" + consul.Addr} {
		name, _, _ := strings.Cut(endpoint, ":")
		t.Run(name, func(t *testing.T) { testOutputFormats(t, endpoint) })
	}
}

func testOutputFormats(t *testing.T, endpoint string) {
	key := encryptionKey(t)
	cfgFile := acmeConfig(t, endpoint, fmt.Sprintf("encryptionKeyFile = %q", writeFile(t, "key", key+"\n")))
	if code, out, errOut := tollgate(t, "storeconfig", "--config", cfgFile); code != exitOK {
		t.Fatalf("storeconfig: exit %d\n%s%s", code, out, errOut)
	}
	keys := acme.NewKeys("keys")
	certKey, _ := keys.Cert("a.example.com")
	stateKey, _ := keys.State("b.example.com")
	now := time.Now().UTC()
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		state, _ := json.Marshal(acme.DomainState{Failures: 2, LastError: "rate limited", LastAttempt: now, NextAttempt: now.Add(time.Hour)})
		node, _ := json.Marshal(leader.NodeRecord{Node: leader.Node{ID: "node-1"}, Version: "v9", Started: now,
			Answered: 3, LastAnswered: now.Add(-12 * time.Second), LastAnsweredName: "a.example.com"})
		if _, err := st.Apply(ctx, nil, kvstore.PutOp(certKey, sealedCert(t, keyring(t, key), certKey, "a.example.com")),
			kvstore.PutOp(stateKey, state), kvstore.PutOp("keys/nodes/node-1", node)); err != nil {
			t.Fatal(err)
		}
	})

	var certs []router.CertificateInfo
	decodeOutput(t, []string{"certs", "list", "--config", cfgFile, "-o", "json"}, &certs)
	if len(certs) != 2 || certs[0].Name != "a.example.com" || certs[0].Status != "ok" || certs[0].Key != certKey ||
		certs[1].Name != "b.example.com" || certs[1].Status != "failing" || certs[1].Renewal == nil || certs[1].Renewal.Failures != 2 {
		t.Errorf("certs list -o json: %+v", certs)
	}
	var fromYAML []router.CertificateInfo
	decodeOutput(t, []string{"certs", "list", "--config", cfgFile, "-o", "yaml"}, &fromYAML)
	if len(fromYAML) != 2 || fromYAML[0].Name != certs[0].Name || !fromYAML[0].NotAfter.Equal(certs[0].NotAfter) {
		t.Errorf("certs list -o yaml: %+v, want %+v", fromYAML, certs)
	}
	var one router.CertificateInfo
	decodeOutput(t, []string{"certs", "show", "--config", cfgFile, "a.example.com", "-o", "json"}, &one)
	if one.Name != "a.example.com" || one.Revision == 0 || one.Serial == "" || one.NotAfter.IsZero() {
		t.Errorf("certs show -o json: %+v", one)
	}
	var cl router.ClusterInfo
	decodeOutputCode(t, []string{"cluster", "status", "--config", cfgFile, "-o", "json"}, &cl, exitFailure)
	if cl.Leader != nil || len(cl.Nodes) != 1 || cl.Nodes[0].ID != "node-1" || cl.Certificates.Total != 1 || cl.Certificates.Failing != 1 {
		t.Errorf("cluster status -o json: %+v", cl)
	}
	if n := cl.Nodes[0]; n.ChallengesAnswered != 3 || !n.LastChallengeAnswered.Equal(now.Add(-12*time.Second)) || n.LastChallengeName != "a.example.com" {
		t.Errorf("cluster status -o json: node %+v, want 3 challenges answered, the latest 12s ago for a.example.com", n)
	}
	_, out, _ := tollgate(t, "cluster", "status", "--config", cfgFile, "-o", "json")
	for _, field := range []string{`"challengesAnswered": 3`, `"lastChallengeAnswered": "`, `"lastChallengeName": "a.example.com"`} {
		if !strings.Contains(out, field) {
			t.Errorf("cluster status -o json lacks %s:\n%s", field, out)
		}
	}
	_, out, _ = tollgate(t, "cluster", "status", "--config", cfgFile)
	if !regexp.MustCompile(`(?m)^ +NODE +ROLE +VERSION +STARTED +APPLIED +SYNC +ANSWERED$`).MatchString(out) || !regexp.MustCompile(`(?m)^ +node-1 .* 3 \(\d+s ago\)$`).MatchString(out) {
		t.Errorf("cluster status: no ANSWERED column with 3 (…s ago):\n%s", out)
	}
	var clYAML router.ClusterInfo
	decodeOutputCode(t, []string{"cluster", "status", "--config", cfgFile, "-o", "yaml"}, &clYAML, exitFailure)
	if len(clYAML.Nodes) != 1 || clYAML.Nodes[0].Version != "v9" {
		t.Errorf("cluster status -o yaml: %+v", clYAML)
	}
	var ls kvListing
	decodeOutput(t, []string{"kv", "ls", "--config", cfgFile, "acme/", "-o", "json"}, &ls)
	if ls.Prefix != "keys/acme/" || ls.Revision == 0 || len(ls.Keys) != 2 || ls.Keys[0].Bytes == 0 {
		t.Errorf("kv ls -o json: %+v", ls)
	}
	var got kvValue
	decodeOutput(t, []string{"kv", "get", "--config", cfgFile, certKey, "-o", "json"}, &got)
	if got.Key != certKey || got.Bytes == 0 || !strings.Contains(got.Value, "BEGIN CERTIFICATE") || strings.Contains(got.Value, "PRIVATE KEY") {
		t.Errorf("kv get -o json: %+v", got)
	}
	var chk checkResult
	decodeOutput(t, []string{"check", cfgFile, "-o", "json"}, &chk)
	if !chk.Valid || chk.File != cfgFile || chk.Problems == nil || len(chk.Problems) != 0 {
		t.Errorf("check -o json: %+v", chk)
	}
	var v versionInfo
	decodeOutput(t, []string{"version", "-o", "yaml"}, &v)
	if v.GoVersion == "" {
		t.Errorf("version -o yaml: %+v", v)
	}
}

// TestCheckJSONProblems: check -o json gives each problem's file, line and
// column, and exits as check does.
func TestCheckJSONProblems(t *testing.T) {
	bad := writeFile(t, "bad.toml", invalidConfig)
	var res checkResult
	decodeOutputCode(t, []string{"check", bad, "-o", "json"}, &res, exitInvalid)
	want := checkProblem{File: bad, Line: 5, Column: 1, Path: "http.routers.a.service", Message: `service "missing" is not defined`}
	if res.Valid || len(res.Problems) != 1 || !strings.HasPrefix(res.Problems[0].Message, want.Message) {
		t.Fatalf("check -o json: %+v", res)
	}
	res.Problems[0].Message = want.Message
	if res.Problems[0] != want {
		t.Errorf("problem %+v, want %+v", res.Problems[0], want)
	}
	var missing checkResult
	decodeOutputCode(t, []string{"check", "/nonexistent/tollgate.toml", "-o", "json"}, &missing, exitInvalid)
	if missing.Valid || len(missing.Problems) != 1 || missing.Problems[0].File != "/nonexistent/tollgate.toml" || missing.Problems[0].Line != 0 {
		t.Errorf("check -o json of a missing file: %+v", missing)
	}
}

// TestCompletion loads the bash completion script in a real bash and asks
// cobra's completion command what follows "certs l".
func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed for this test: %v", err)
	}
	code, script, stderr := tollgate(t, "completion", "bash")
	if code != exitOK || !strings.Contains(script, "__start_tollgate") {
		t.Fatalf("completion bash: exit %d\n%s", code, stderr)
	}
	file := writeFile(t, "tollgate.bash", script)
	out, err := exec.Command(bash, "-c", "source "+file+" && complete -p tollgate").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tollgate") {
		t.Fatalf("bash could not load the script: %v\n%s", err, out)
	}
	for _, shell := range []string{"zsh", "fish"} {
		if code, script, _ := tollgate(t, "completion", shell); code != exitOK || !strings.Contains(script, "tollgate") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "certs", "l"}, "list"},
		{[]string{"__complete", "cluster", ""}, "status"},
		{[]string{"__complete", "certs", "list", "--ap"}, "--api"},
		{[]string{"__complete", "certs", "list", "-o", ""}, "yaml"},
		{[]string{"__complete", "serve", "--log-level", ""}, "warn"},
	} {
		code, out, _ := tollgate(t, tc.args...)
		if code != exitOK || !slices.Contains(strings.Split(out, "\n"), tc.want) && !strings.Contains(out, tc.want+"\t") {
			t.Errorf("tollgate %s: exit %d, want %q offered:\n%s", strings.Join(tc.args, " "), code, tc.want, out)
		}
	}
}

// TestManPages writes the manual pages.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man")
	if code, _, stderr := tollgate(t, "docs", "man", dir); code != exitOK {
		t.Fatalf("docs man: exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tollgate-certs-list.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), ".TH \"TOLLGATE\"") || !strings.Contains(string(b), "--api") {
		t.Errorf("tollgate-certs-list.1:\n%s", b)
	}
}

// fakeAPI is a replica's API as the router serves it, from fixed views.
func fakeAPI(t *testing.T, certs []router.CertificateInfo, cl router.ClusterInfo) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /api/certificates", func(w http.ResponseWriter, _ *http.Request) { write(w, certs) })
	mux.HandleFunc("GET /api/certificates/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, c := range certs {
			if c.Name == r.PathValue("name") {
				write(w, c)
				return
			}
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("GET /api/cluster", func(w http.ResponseWriter, _ *http.Request) { write(w, cl) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestAPIClient: with --api, certs list, certs show and cluster status
// read a replica's API, in every format.
func TestAPIClient(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	certs := []router.CertificateInfo{
		{Name: "a.example.com", SANs: []string{"a.example.com", "www.a.example.com"}, Source: "acme", Key: "tollgate/acme/certs/x/a.example.com", Revision: 7,
			Issuer: "Test CA", Serial: "0a", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour), Status: "ok", StatusText: "ok",
			Renewal: &router.RenewalInfo{RenewAt: now.Add(40 * 24 * time.Hour)}},
		{Name: "b.example.com", SANs: []string{"b.example.com"}, Source: "acme", Status: "failing", StatusText: "2 failure(s), next attempt in 1h0m0s",
			Renewal: &router.RenewalInfo{Failures: 2, LastError: "rate limited", NextAttempt: now.Add(time.Hour)}},
	}
	cl := router.ClusterInfo{
		Leader: &router.LeaderInfo{Node: "n1", Term: 3, Since: now}, Configuration: "store v2", LatestRevision: 9,
		Nodes:        []router.NodeInfo{{ID: "n1", Role: "leader", Version: "v1", Started: now, AppliedRevision: 9, InSync: true}},
		Certificates: router.CertificateCounts{Total: 1, Failing: 1},
	}
	api := fakeAPI(t, certs, cl).URL

	var gotCerts []router.CertificateInfo
	decodeOutput(t, []string{"certs", "list", "--api", api, "-o", "json"}, &gotCerts)
	if len(gotCerts) != 2 || gotCerts[0].Name != "a.example.com" || !gotCerts[0].NotAfter.Equal(certs[0].NotAfter) {
		t.Errorf("certs list --api -o json: %+v", gotCerts)
	}
	var one router.CertificateInfo
	decodeOutput(t, []string{"certs", "show", "--api", api, "B.example.com", "-o", "yaml"}, &one)
	if one.Name != "b.example.com" || one.Renewal == nil || one.Renewal.LastError != "rate limited" {
		t.Errorf("certs show --api -o yaml: %+v", one)
	}
	var gotCl router.ClusterInfo
	decodeOutput(t, []string{"cluster", "status", "--api", api, "-o", "json"}, &gotCl)
	if gotCl.Leader == nil || gotCl.Leader.Node != "n1" || len(gotCl.Nodes) != 1 {
		t.Errorf("cluster status --api -o json: %+v", gotCl)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"list table", []string{"certs", "list", "--api", api}, exitOK, []string{"a.example.com", "www.a.example.com", "Test CA", "(no certificate)", "2 failure(s)"}},
		{"show table", []string{"certs", "show", "--api", api, "a.example.com"}, exitOK, []string{"key:      tollgate/acme/certs/x/a.example.com (revision 7)", "state:    ok"}},
		{"show missing", []string{"certs", "show", "--api", api, "c.example.com"}, exitFailure, []string{"nothing stored for c.example.com"}},
		{"status table", []string{"cluster", "status", "--api", api}, exitOK, []string{"leader:        n1 (term 3", "configuration: store v2", "b.example.com in ", "1 name(s) failing"}},
		{"with --kv", []string{"certs", "list", "--api", api, "--kv", "consul://127.0.0.1:1"}, exitUsage, []string{"without --kv"}},
		{"bad URL", []string{"cluster", "status", "--api", "ftp://127.0.0.1:8080"}, exitUsage, []string{"want http://HOST:PORT"}},
		{"HOST:PORT alone", []string{"cluster", "status", "--api", strings.TrimPrefix(api, "http://")}, exitOK, []string{"leader:        n1 (term 3"}},
		{"trailing /api", []string{"cluster", "status", "--api", api + "/api/"}, exitOK, []string{"leader:        n1 (term 3"}},
		{"not an API", []string{"certs", "list", "--api", api + "/nothing"}, exitStore, []string{"404", "no tollgate API serves /api/certificates there: give --api the replica's [api] entry point"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tollgate(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s%s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout+stderr, w) {
					t.Errorf("output lacks %q:\n%s%s", w, stdout, stderr)
				}
			}
		})
	}
}

// TestLockedEmbeddedStore: while a replica runs on the embedded store,
// certs list, certs show and cluster status given its configuration read
// its [api] entry point instead, and show what the store holds (a
// certificate stored before the replica started, the replica as leader);
// without [api] they say what to do, and so do the kv commands.
func TestLockedEmbeddedStore(t *testing.T) {
	dir := t.TempDir()
	ports := testserver.FreePorts(t, 2)
	store := "file:" + filepath.Join(dir, "state.db")
	key := encryptionKey(t)
	keyFile := writeFile(t, "key", key+"\n")
	const name = "stored.example.com"
	keys := acme.NewKeys("tollgate")
	certKey, _ := keys.Cert(name)
	withStore(t, store, func(ctx context.Context, st kvstore.Store) {
		if _, err := st.Apply(ctx, nil, kvstore.PutOp(certKey, sealedCert(t, keyring(t, key), certKey, name))); err != nil {
			t.Fatal(err)
		}
	})
	base := fmt.Sprintf(`[store]
endpoint = %q
[entryPoints.web]
address = "127.0.0.1:%d"
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[acme]
email = "ops@example.com"
caServer = "https://127.0.0.1:9/directory"
encryptionKeyFile = %q
[acme.tlsChallenge]
[http.routers.all]
rule = "PathPrefix(`+"`/`"+`)"
entryPoints = ["web"]
service = "b"
[[http.services.b.loadBalancer.servers]]
url = "http://127.0.0.1:9"
`, store, ports[0], keyFile)
	withAPI := writeFile(t, "with-api.toml", base+fmt.Sprintf("[entryPoints.api]\naddress = \":%d\"\n[api]\n", ports[1]))
	withoutAPI := writeFile(t, "without-api.toml", base)
	startReplica(t, "n1", "--config", withAPI)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])

	through := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := tollgate(t, args...)
		if code != exitOK || !strings.Contains(stderr, "in use by a running replica: reading its API at "+apiURL) {
			t.Fatalf("tollgate %s: exit %d, want 0 and a note that it reads the API at %s:\n%s%s", strings.Join(args, " "), code, apiURL, stdout, stderr)
		}
		if strings.Contains(stdout, "-----BEGIN") {
			t.Fatalf("tollgate %s prints PEM:\n%s", strings.Join(args, " "), stdout)
		}
		return stdout
	}
	var certs []router.CertificateInfo
	if out := through("certs", "list", "--config", withAPI, "-o", "json"); json.Unmarshal([]byte(out), &certs) != nil ||
		len(certs) != 1 || certs[0].Name != name || certs[0].Status != "ok" || certs[0].Key != certKey || certs[0].NotAfter.IsZero() {
		t.Fatalf("certs list through the API: %s", out)
	}
	var one router.CertificateInfo
	if out := through("certs", "show", name, "--config", withAPI, "-o", "json"); json.Unmarshal([]byte(out), &one) != nil || one.Serial != certs[0].Serial {
		t.Fatalf("certs show through the API: %s", out)
	}
	if out := through("certs", "list", "--config", withAPI); !strings.Contains(out, name) {
		t.Fatalf("certs list (table) through the API lacks %s:\n%s", name, out)
	}
	// The replica becomes leader a moment after it serves.
	var cl router.ClusterInfo
	for deadline := time.Now().Add(30 * time.Second); cl.Leader == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("cluster status through the API shows no leader: %+v", cl)
		}
		out := through("cluster", "status", "--config", withAPI, "-o", "json")
		if err := json.Unmarshal([]byte(out), &cl); err != nil {
			t.Fatalf("cluster status: %v:\n%s", err, out)
		}
	}
	if cl.Leader.Node != "n1" || len(cl.Nodes) != 1 || cl.Nodes[0].ID != "n1" || cl.Certificates.Total != 1 {
		t.Fatalf("cluster status through the API: %+v", cl)
	}

	want := "the embedded store " + filepath.Join(dir, "state.db") + " is in use by a running replica: " + storeInUseHint
	for _, args := range [][]string{
		{"certs", "list", "--config", withoutAPI},
		{"cluster", "status", "--config", withoutAPI},
		{"kv", "ls", "--config", withAPI},
		{"kv", "get", "--kv", store, "config/current"},
	} {
		code, _, stderr := tollgate(t, args...)
		if code != exitStore || !strings.Contains(stderr, want) {
			t.Errorf("tollgate %s: exit %d, want %d and %q:\n%s", strings.Join(args, " "), code, exitStore, want, stderr)
		}
	}
}

// TestBuildStamp builds tollgate as make build does, with a version and a
// commit stamped in, and reads them back.
func TestBuildStamp(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-X main.version=$(BUILD_VERSION)", "-X main.commit=$(BUILD_COMMIT)", "-o bin/tollgate ./cmd/tollgate"} {
		if !strings.Contains(string(mk), want) {
			t.Errorf("the Makefile's build lacks %q", want)
		}
	}
	bin := filepath.Join(t.TempDir(), "tollgate")
	const commit = "0123456789abcdef0123456789abcdef01234567"
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit="+commit+"-dirty", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.Version != "v9.8.7" || v.Commit != commit+"-dirty" {
		t.Errorf("version -o json: %+v", v)
	}
	out, _ = exec.Command(bin, "--version").Output()
	if !strings.HasPrefix(string(out), "tollgate v9.8.7+0123456789ab-dirty go") {
		t.Errorf("--version: %q", out)
	}
}
