package migrate

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  --consul  --consul.endpoint=10.0.0.5:8500\n\t--consul.prefix=traefik ", []string{"--consul", "--consul.endpoint=10.0.0.5:8500", "--consul.prefix=traefik"}, false},
		{`--kubernetes.labelselector='app in (a, b)' --x="a \"b\" \$c" --y=a\ b`, []string{"--kubernetes.labelselector=app in (a, b)", `--x=a "b" $c`, "--y=a b"}, false},
		{`--empty="" --z=''`, []string{"--empty=", "--z="}, false},
		{"--a \\\n--b", []string{"--a", "--b"}, false},
		{`--x="open`, nil, true},
		{`--x='open`, nil, true},
	} {
		got, err := SplitArgs(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q, error %t", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// clusterArgs is the file of a cluster whose store Traefik got on its
// command line.
const clusterArgsFile = "testdata/traefik-v1/cluster-args.toml"

func convertArgs(t *testing.T, args string, opts Options) *Result {
	t.Helper()
	src, err := os.ReadFile(clusterArgsFile)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Args, err = SplitArgs(args); err != nil {
		t.Fatal(err)
	}
	res, err := ConvertTraefikV1("traefik.toml", src, opts)
	if err != nil {
		t.Fatalf("convert with %q: %v", args, err)
	}
	return res
}

// TestTraefikV1StoreFlags converts a file whose store is on Traefik's
// command line, given with the flags of Consul or etcd in their spellings
// (--name=value and --name value, any case): the store and the import
// command are those of the flags, and each flag has its report line,
// placed on the command line.
func TestTraefikV1StoreFlags(t *testing.T) {
	for _, tc := range []struct {
		name, args, endpoint, command string
		lines                         []string
	}{
		{"consul", "--consul --consul.endpoint=10.0.0.5:8500 --consul.prefix=traefik",
			"consul://10.0.0.5:8500", "--from-traefik-v1 --kv consul://10.0.0.5:8500 --prefix traefik --config tollgate.toml",
			[]string{"--traefik-args: consul: converted", "--traefik-args: consul.endpoint: converted", "--traefik-args: consul.prefix: converted"}},
		{"etcd v3, values after a space", "traefik --etcd --etcd.endpoint etcd-0:2379,etcd-1:2379 --etcd.prefix /traefik --etcd.useapiv3=true --etcd.tls.ca=/ca.pem",
			"etcd://etcd-0:2379,etcd-1:2379?tls=true&ca_file=/ca.pem", "--prefix traefik --config tollgate.toml",
			[]string{"--traefik-args: etcd.useAPIV3: converted: true", "--traefik-args: etcd.tls: converted", "--traefik-args: etcd.endpoint: converted"}},
		{"etcd v2, without the section flag", "--ETCD.Endpoint=etcd:2379",
			"etcd://etcd:2379", "--prefix traefik --config tollgate.toml",
			[]string{"--traefik-args: etcd: changed: tollgate uses etcd's v3 API", "v3 keyspace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := convertArgs(t, tc.args, Options{})
			cfg := parseConverted(t, res)
			if cfg.Store == nil || cfg.Store.Endpoint != tc.endpoint {
				t.Fatalf("store = %+v, want endpoint %s", cfg.Store, tc.endpoint)
			}
			if got := reported(res, "acme.storage", "action", "tollgate certs import"); len(got) != 1 || !strings.HasSuffix(got[0], tc.command) {
				t.Fatalf("acme.storage advice %q, want it to end with %q", got, tc.command)
			}
			for _, l := range tc.lines {
				if !strings.Contains(reportText(res), l) {
					t.Errorf("the report has no %q:\n%s", l, reportText(res))
				}
			}
			if strings.Contains(reportText(res), "--from-acme-json") {
				t.Fatalf("advises --from-acme-json for a store key:\n%s", reportText(res))
			}
			// Every key the flags set has its line, as a key of the file.
			tree, _, err := decodeSource("traefik.toml", mustRead(t, clusterArgsFile))
			if err != nil {
				t.Fatal(err)
			}
			args, _ := SplitArgs(tc.args)
			(&converter{fromArgs: map[string]bool{}}).applyArgs(tree, args)
			if missing := unreported(res, tree); len(missing) > 0 {
				t.Fatalf("keys without a line: %q\n%s", missing, reportText(res))
			}
		})
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTraefikV1FlagsOverrideFile checks that a flag wins over the file's
// key, as in Traefik, and that the line names the command line.
func TestTraefikV1FlagsOverrideFile(t *testing.T) {
	src := "[consul]\nendpoint = \"old:8500\"\nprefix = \"edge\"\n"
	args, _ := SplitArgs("--Consul.Endpoint=new:8500")
	res, err := ConvertTraefikV1("traefik.toml", []byte(src), Options{Args: args, ArgsName: "args"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseConverted(t, res)
	if cfg.Store.Endpoint != "consul://new:8500" {
		t.Fatalf("endpoint %q, want the flag's", cfg.Store.Endpoint)
	}
	if len(reported(res, "args: consul.endpoint: converted")) != 1 || len(reported(res, "traefik.toml:3: consul.prefix: converted")) != 1 {
		t.Fatalf("report:\n%s", reportText(res))
	}
}

// TestTraefikV1FlagErrors checks the flags the conversion refuses, each
// reported at the command line.
func TestTraefikV1FlagErrors(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"--consul --consul.endpoint", "--traefik-args: --consul.endpoint: needs a value"},
		{"--consul.watch=maybe", "--traefik-args: --consul.watch: \"maybe\" is not true or false"},
		{"--acme.email=a@b.c --acme=true --acme.storage", "--acme.storage: needs a value"},
	} {
		args, _ := SplitArgs(tc.args)
		_, err := ConvertTraefikV1("traefik.toml", nil, Options{Args: args})
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want an *Error with %q", tc.args, err, tc.want)
		}
	}
	// Flags that are not converted are reported, not refused.
	res := convertArgs(t, "--entrypoints='Name:http Address::80' --docker.domain=x stray", Options{})
	for _, want := range []string{"--entrypoints: unsupported", "--docker.domain: unsupported", "stray: unknown"} {
		if len(reported(res, want)) != 1 {
			t.Errorf("no line %q:\n%s", want, reportText(res))
		}
	}
}

// TestTraefikV1KVStorageWithoutStore checks the advice for an [acme]
// storage that is a KV key when neither the file nor the flags name the
// store: the report asks for the flags, and never advises reading a file
// of that name.
func TestTraefikV1KVStorageWithoutStore(t *testing.T) {
	res, err := TraefikV1("traefik.toml", mustRead(t, clusterArgsFile))
	if err != nil {
		t.Fatal(err)
	}
	got := reported(res, "acme.storage: action", "--traefik-args", "--consul")
	if len(got) != 1 {
		t.Fatalf("no request for the store flags:\n%s", reportText(res))
	}
	if strings.Contains(reportText(res), "--from-acme-json") || strings.Contains(reportText(res), "--from-traefik-v1") {
		t.Fatalf("advises an import without knowing the store:\n%s", reportText(res))
	}
	// A file storage is still imported from the file.
	res2, err := TraefikV1("traefik.toml", []byte("[entryPoints.https]\naddress = \":443\"\n  [entryPoints.https.tls]\n[acme]\nstorage = \"/data/acme.json\"\n[acme.tlsChallenge]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(reported(res2, "acme.storage: action", "--from-acme-json /data/acme.json --config tollgate.toml")) != 1 {
		t.Fatalf("report:\n%s", reportText(res2))
	}
}

// TestTraefikV1AdviceNamesOut checks that the commands the report advises
// name the output file.
func TestTraefikV1AdviceNamesOut(t *testing.T) {
	res := convertArgs(t, "--consul --consul.endpoint=consul:8500", Options{Out: "/etc/tollgate/cluster 1.toml"})
	got := reported(res, "acme.storage: action")
	if len(got) != 1 || !strings.Contains(got[0], "tollgate check --config '/etc/tollgate/cluster 1.toml'") || !strings.HasSuffix(got[0], "--config '/etc/tollgate/cluster 1.toml'") {
		t.Fatalf("acme.storage advice %q does not name the output file", got)
	}
	if strings.Contains(reportText(res), "tollgate.toml ") {
		t.Fatalf("the default name is left somewhere:\n%s", reportText(res))
	}
}
