package migrate_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/migrate"
)

// TestTraefikV1ImportAdvice checks the import command the conversion
// report gives for each acme storage setting: it names the key where
// Traefik keeps its data, the way "tollgate certs import" reads --prefix
// (<prefix>/acme/account/object) and --traefik-key (the whole key), and
// never both.
func TestTraefikV1ImportAdvice(t *testing.T) {
	for _, tc := range []struct {
		name, store, storage string
		want                 string
	}{
		{"the documented storage", "[consul]\nendpoint = \"consul:8500\"\nprefix = \"traefik\"", "traefik/acme/account",
			"--from-traefik-v1 --kv consul://consul:8500 --prefix traefik --config tollgate.toml"},
		{"another storage", "[consul]\nendpoint = \"consul:8500\"\nprefix = \"traefik\"", "traefik/certs",
			"--from-traefik-v1 --kv consul://consul:8500 --traefik-key traefik/certs/object --config tollgate.toml"},
		{"a prefix of two segments", "[etcd]\nendpoint = \"etcd:2379\"\nprefix = \"/edge/prod\"\nuseAPIV3 = true", "edge/prod/acme/account",
			"--from-traefik-v1 --kv etcd://etcd:2379 --prefix edge/prod --config tollgate.toml"},
		{"a storage outside the prefix", "[consul]\nendpoint = \"consul:8500\"\nprefix = \"traefik\"", "/shared/acme",
			"--from-traefik-v1 --kv consul://consul:8500 --traefik-key shared/acme/object --config tollgate.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.store + "\n[acme]\nemail = \"ops@example.com\"\nstorage = \"" + tc.storage + "\"\nentryPoint = \"https\"\n" +
				"  [acme.httpChallenge]\n  entryPoint = \"http\"\n" +
				"[entryPoints]\n  [entryPoints.http]\n  address = \":80\"\n  [entryPoints.https]\n  address = \":443\"\n    [entryPoints.https.tls]\n"
			res, err := migrate.TraefikV1("traefik.toml", []byte(src))
			if err != nil {
				t.Fatalf("TraefikV1: %v", err)
			}
			var advice []string
			for _, it := range res.Items {
				if it.Key == "acme.storage" && it.Kind == migrate.Action {
					advice = append(advice, it.Advice)
				}
			}
			if len(advice) != 1 || !strings.HasSuffix(advice[0], "tollgate certs import "+tc.want) {
				t.Fatalf("acme.storage advice %q; want it to end with %q", advice, tc.want)
			}
			// Where the command reads, as "tollgate certs import" does.
			args := strings.Fields(tc.want)
			var key string
			for i, a := range args {
				switch a {
				case "--prefix":
					key = args[i+1] + "/" + migrate.DefaultTraefikV1Key
				case "--traefik-key":
					key = args[i+1]
				}
			}
			if want := strings.Trim(tc.storage, "/") + "/object"; key != want {
				t.Fatalf("the command reads %s, Traefik wrote %s", key, want)
			}
		})
	}
}

// TestTraefikV1EtcdAPIV2 checks that the report warns when Traefik 1.x
// kept its data through etcd's v2 API — its default, without useAPIV3 =
// true — which tollgate, a v3 client, cannot read.
func TestTraefikV1EtcdAPIV2(t *testing.T) {
	for _, tc := range []struct {
		setting string
		warned  bool
	}{{"", true}, {"useAPIV3 = false", true}, {"useAPIV3 = true", false}} {
		src := "[etcd]\nendpoint = \"etcd:2379\"\n" + tc.setting + "\n"
		res, err := migrate.TraefikV1("traefik.toml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", tc.setting, err)
		}
		warned := slices.ContainsFunc(res.Items, func(it migrate.Item) bool {
			return it.Kind == migrate.Changed && strings.Contains(it.Message, "v2 API") && strings.Contains(it.Advice, "v3 keyspace")
		})
		if warned != tc.warned {
			t.Errorf("%q: warned about the v2 API: %t, want %t", tc.setting, warned, tc.warned)
		}
	}
}
