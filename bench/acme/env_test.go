package acmebench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/leader"
)

// The environment bench/acme.sh sets.
const (
	// envEnable must be 1 for the benchmarks to run; without it they skip,
	// so that `go test ./...` does not run them.
	envEnable = "TOLLGATE_ACME_BENCH"
	// envBinary is the tollgate binary to run; empty builds one.
	envBinary = "TOLLGATE_BIN"
	// envBackends lists the stores to run on (file, etcd, consul), comma
	// or space separated; empty means every one a benchmark supports.
	envBackends = "TOLLGATE_ACME_BACKENDS"
	// envTrials is the number of propagation trials (default 200).
	envTrials = "TOLLGATE_ACME_TRIALS"
	// envCerts is the number of certificates of the scale benchmark
	// (default 10000).
	envCerts = "TOLLGATE_ACME_CERTS"
	// envRuns is how many times the scale benchmark starts a replica on
	// each store (default 3).
	envRuns = "TOLLGATE_ACME_RUNS"
	// envClkTck is the kernel's USER_HZ, the unit of /proc/PID/stat's
	// times (getconf CLK_TCK; default 100).
	envClkTck = "TOLLGATE_CLK_TCK"
	// envReplicaEnv is added to the replicas' environment: space-separated
	// NAME=VALUE settings such as GOGC=50 or GODEBUG=gctrace=1, for
	// finding where their time and memory go.
	envReplicaEnv = "TOLLGATE_REPLICA_ENV"
)

// prefix is the replicas' configuration prefix in the store.
const prefix = "bench"

// caServer is the CA directory the replicas are configured with: nothing
// listens there, and with no domains configured no order is placed.
const caServer = "https://127.0.0.1:1/dir"

func enabled(t testing.TB) {
	t.Helper()
	if os.Getenv(envEnable) != "1" {
		t.Skipf("a benchmark: run bench/acme.sh, or set %s=1", envEnable)
	}
}

func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// backends returns the stores to run on: those of envBackends that the
// benchmark supports, else every supported one.
func backends(t testing.TB, supported ...string) []string {
	t.Helper()
	list := os.Getenv(envBackends)
	if list == "" {
		return supported
	}
	var out []string
	for _, b := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch {
		case !slices.Contains([]string{"file", "etcd", "consul"}, b):
			t.Fatalf("%s: unknown store %q; use file, etcd or consul", envBackends, b)
		case slices.Contains(supported, b):
			out = append(out, b)
		default:
			t.Logf("%s: not run by %s (supported: %s)", b, t.Name(), strings.Join(supported, ", "))
		}
	}
	return out
}

// startStore starts the store server of kind and returns its endpoint.
// The embedded store is a file, which only one process may open at a time.
func startStore(t testing.TB, kind string) string {
	t.Helper()
	switch kind {
	case "etcd":
		return "etcd://" + testserver.Etcd(t).Addr
	case "consul":
		return "consul://" + testserver.Consul(t).Addr
	}
	return "file:" + filepath.Join(t.TempDir(), "state.db")
}

func openStore(t testing.TB, endpoint string) kvstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := backend.Open(ctx, endpoint, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tollgateBinary is the binary of envBinary, or one built once.
var tollgateBinary = sync.OnceValues(func() (string, error) {
	if p := os.Getenv(envBinary); p != "" {
		return p, nil
	}
	dir, err := os.MkdirTemp("", "tollgate-acmebench-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tollgate")
	out, err := exec.Command("go", "build", "-o", path, "../../cmd/tollgate").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return path, nil
})

func binary(t testing.TB) string {
	t.Helper()
	p, err := tollgateBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newKeyring writes a new random encryption key to a file, as an operator
// would, and returns the file and the keyring read from the same text.
// The key is never logged.
func newKeyring(t testing.TB) (string, *acme.Keyring) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	text := base64.StdEncoding.EncodeToString(key) + "\n"
	file := filepath.Join(t.TempDir(), "encryption-key")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := acme.ParseKeyring(text)
	if err != nil {
		t.Fatal(err)
	}
	return file, kr
}

// issuer makes certificate records as the leader stores them: ECDSA P-256
// leaves for the record's names, signed by an ECDSA P-384 intermediate
// under an RSA root, the chain (leaf, intermediate) in clear and the leaf's
// key sealed with the replicas' keyring. Leaves carry what a public CA's
// do (OCSP and CA issuer URLs, a CRL distribution point, a policy, an SCT
// list), so that records are of a real one's size, about 3.5 KB.
type issuer struct {
	kr       *acme.Keyring
	roots    *x509.CertPool
	inter    *x509.Certificate
	interKey *ecdsa.PrivateKey
	interPEM []byte
}

func newIssuer(t testing.TB, kr *acme.Keyring) *issuer {
	t.Helper()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"Tollgate Bench"}, CommonName: "Tollgate Bench Root X1"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	interTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{Organization: []string{"Tollgate Bench"}, CommonName: "Bench E1"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(3 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		IssuingCertificateURL: []string{"http://x1.i.bench.test/"},
		CRLDistributionPoints: []string{"http://x1.c.bench.test/"},
		PolicyIdentifiers:     []asn1.ObjectIdentifier{{2, 23, 140, 1, 2, 1}},
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(interDER)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &issuer{
		kr: kr, roots: roots, inter: inter, interKey: interKey,
		interPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: interDER}),
	}
}

// writer is who a record says wrote it: the leader's node id and term.
type writer struct {
	node  string
	token int64
}

// sctListOID is the certificate extension of embedded SCTs (RFC 6962).
var sctListOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// record makes a new certificate for names (the main one first) with a
// new key and serial, and returns the record to store at storeKey, as
// JSON, and the serial in hex.
func (is *issuer) record(storeKey string, names []string, w writer) ([]byte, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	// 18 random bytes, as Let's Encrypt's serials.
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	raw[0] = raw[0]&0x7f | 0x01
	serial := new(big.Int).SetBytes(raw)
	// Two SCTs' worth of bytes.
	sct := make([]byte, 240)
	if _, err := rand.Read(sct); err != nil {
		return nil, "", err
	}
	sctExt, err := asn1.Marshal(sct)
	if err != nil {
		return nil, "", err
	}
	now := time.Now().Truncate(time.Second)
	notBefore := now.Add(-time.Hour)
	notAfter := notBefore.Add(90 * 24 * time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		OCSPServer:            []string{"http://e1.o.bench.test"},
		IssuingCertificateURL: []string{"http://e1.i.bench.test/"},
		CRLDistributionPoints: []string{"http://e1.c.bench.test/57.crl"},
		PolicyIdentifiers:     []asn1.ObjectIdentifier{{2, 23, 140, 1, 2, 1}},
		ExtraExtensions:       []pkix.Extension{{Id: sctListOID, Value: sctExt}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.inter, &key.PublicKey, is.interKey)
	if err != nil {
		return nil, "", err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), is.interPEM...)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	// The form lego hands the leader: SEC 1 PEM.
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	sealed, err := is.kr.Seal(storeKey, keyPEM)
	clear(keyPEM)
	clear(keyDER)
	if err != nil {
		return nil, "", err
	}
	serialHex := hex.EncodeToString(serial.Bytes())
	rec := acme.CertRecord{
		Version:   acme.RecordVersion,
		Domains:   names,
		NotBefore: notBefore.UTC(),
		NotAfter:  notAfter.UTC(),
		Issuer:    is.inter.Subject.CommonName,
		Serial:    serialHex,
		KeyType:   "EC256",
		CA:        caServer,
		CertURL:   strings.TrimSuffix(caServer, "/dir") + "/certZ/" + serialHex,
		ARI: &acme.ARIState{
			WindowStart: notBefore.Add(59 * 24 * time.Hour).UTC(),
			WindowEnd:   notBefore.Add(61 * 24 * time.Hour).UTC(),
			RenewAt:     notBefore.Add(60 * 24 * time.Hour).UTC(),
			CheckAgain:  now.Add(6 * time.Hour).UTC(),
			CheckedAt:   now.UTC(),
		},
		Node:        w.node,
		Token:       w.token,
		Written:     time.Now().UTC(),
		Certificate: string(chain),
		PrivateKey:  sealed,
	}
	// As the leader writes it (acme.Manager.order).
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, "", err
	}
	return b, serialHex, nil
}

// leaderOf waits until a replica leads and returns it as a record's writer.
func leaderOf(t testing.TB, st kvstore.Store) writer {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		kv, err := st.Get(ctx, prefix+"/"+leader.DefaultKey)
		cancel()
		if err == nil {
			var info leader.Info
			if json.Unmarshal(kv.Value, &info) == nil && info.ID != "" && info.Token != 0 {
				return writer{node: info.ID, token: info.Token}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader after a minute (last error: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// putAll writes ops in as few batches as the store's limits allow (at
// most 90 % of its transaction size, MaxTxnOps operations) and returns the
// number of batches.
func putAll(t testing.TB, st kvstore.Store, ops []kvstore.Op) int {
	t.Helper()
	lim := st.Limits()
	budget := lim.MaxTxnBytes * 9 / 10
	batches := 0
	var batch []kvstore.Op
	size := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := st.Apply(ctx, nil, batch...); err != nil {
			t.Fatalf("write of %d records (%d bytes as sent): %v", len(batch), size, err)
		}
		batches++
		batch, size = batch[:0], 0
	}
	for _, op := range ops {
		n := lim.TxnBytes([]kvstore.Op{op})
		if len(batch) > 0 && (len(batch)+1 > lim.MaxTxnOps || size+n > budget) {
			flush()
		}
		batch = append(batch, op)
		size += n
	}
	flush()
	return batches
}

// parallel runs f(0) … f(n-1) on GOMAXPROCS goroutines and returns the
// first error.
func parallel(n int, f func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// replica is one tollgate process.
type replica struct {
	id         string
	https, api int
	logPath    string
	cmd        *exec.Cmd
	done       chan struct{}
	// started is taken right before the process is started.
	started time.Time
}

// startReplica starts tollgate on endpoint with an HTTPS entry point, an
// API entry point for /ready, and ACME with the TLS-ALPN-01 challenge, no
// domains and an unreachable CA, so that it only serves what the store
// holds. It is stopped when the test ends.
func startReplica(t *testing.T, endpoint, keyFile, id string) *replica {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	ports := testserver.FreePorts(t, 2)
	r := &replica{id: id, https: ports[0], api: ports[1], logPath: filepath.Join(dir, "tollgate.log")}
	cfg := fmt.Sprintf(`[store]
endpoint = %q
prefix = %q

[entryPoints.websecure]
address = "127.0.0.1:%d"
  [entryPoints.websecure.http.tls]

[entryPoints.api]
address = "127.0.0.1:%d"

[api]

[lifecycle]
drainDelay = "10ms"
graceTimeout = "1s"

[acme]
email = "bench@tollgate.test"
caServer = %q
encryptionKeyFile = %q
  [acme.tlsChallenge]
`, endpoint, prefix, r.https, r.api, caServer, keyFile)
	cfgFile := filepath.Join(dir, "tollgate.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "serve", "--config", cfgFile, "--node-id", id)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.Env = append(os.Environ(), strings.Fields(os.Getenv(envReplicaEnv))...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.started = time.Now()
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func() {
		_ = r.cmd.Wait()
		logf.Close()
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *replica) pid() int     { return r.cmd.Process.Pid }
func (r *replica) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.https) }

// waitReady polls /ready every 5 ms until it answers 200 and returns when
// it did.
func (r *replica) waitReady(t *testing.T, limit time.Duration) time.Time {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("http://127.0.0.1:%d/ready", r.api)
	deadline := time.Now().Add(limit)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now()
			}
		}
		select {
		case <-r.done:
			t.Fatalf("replica %s exited before it was ready; its log ends:\n%s", r.id, r.logTail(40))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready after %v; its log ends:\n%s", r.id, limit, r.logTail(40))
		}
	}
}

// stop terminates the replica and waits for it; idempotent.
func (r *replica) stop(t *testing.T) {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		t.Logf("replica %s still running 15s after SIGTERM; killing it", r.id)
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// gcTrace summarizes the GODEBUG=gctrace=1 lines of the replica's log:
// how many collections ran and the last ones; "" without such lines.
func (r *replica) gcTrace(last int) string {
	b, _ := os.ReadFile(r.logPath)
	var gcs []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "gc ") && strings.Contains(line, " MB, ") {
			gcs = append(gcs, line)
		}
	}
	if len(gcs) == 0 {
		return ""
	}
	return fmt.Sprintf("%d GCs; the last:\n%s", len(gcs), strings.Join(gcs[max(len(gcs)-last, 0):], "\n"))
}

func (r *replica) logTail(n int) string {
	b, _ := os.ReadFile(r.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are fields 14 and 15 of the line, 12 and 13 of these.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// ticksPerSecond is USER_HZ.
func ticksPerSecond(t testing.TB) float64 {
	return float64(envInt(t, envClkTck, 100))
}

// memStatus returns the kB fields of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, RssFile, …).
func memStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 2 && f[1] == "kB" {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				out[name] = n
			}
		}
	}
	return out, nil
}

// rssByFile returns the resident kB of each file pid maps (its binary,
// the embedded store's file), from /proc/PID/smaps.
func rssByFile(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	path := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			// A mapping's header: address perms offset dev inode [path].
			path = ""
			if len(f) >= 6 && strings.HasPrefix(f[5], "/") {
				path = f[5]
			}
		case len(f) == 3 && f[0] == "Rss:" && path != "":
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[path] += n
			}
		}
	}
	return out, nil
}

// pollConfig is the client side of the polling handshakes: the serial is
// all that is looked at, so the chain is not verified, and X25519 alone
// keeps each handshake cheap for the replica.
func pollConfig(name string) *tls.Config {
	return &tls.Config{
		ServerName:         name,
		InsecureSkipVerify: true, // only the serial is compared
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
	}
}

// handshake connects to addr with cfg and returns the leaf served.
func handshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func serialOf(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// percentile is the nearest-rank percentile p of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

// median of v, which it does not modify.
func median[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func mib(kb int64) string { return fmt.Sprintf("%.0f MiB", float64(kb)/1024) }
