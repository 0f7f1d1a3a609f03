package deploy_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router"
)

// tollgateContainer is a container that runs tollgate's image.
type tollgateContainer struct {
	w workload
	c *corev1.Container
	// cmd is the tollgate command the arguments run ("serve").
	cmd string
	// flags are the command's flags by name, without dashes.
	flags map[string]string
	// err says why the arguments did not parse.
	err error
}

func (tc tollgateContainer) String() string { return fmt.Sprintf("%s: container %s", tc.w, tc.c.Name) }

// tollgate returns every container of the build that runs tollgate.
func (b *bundle) tollgate() []tollgateContainer {
	var out []tollgateContainer
	for _, w := range b.workloads() {
		for _, c := range allContainers(&w.pod.Spec) {
			if repo, _, _ := splitImage(c.Image); repo != b.image {
				continue
			}
			tc := tollgateContainer{w: w, c: c}
			tc.cmd, tc.flags, tc.err = parseArgs(c.Args)
			out = append(out, tc)
		}
	}
	return out
}

// running returns the one container of a kind of workload that runs the
// tollgate command cmd.
func (b *bundle) running(t *testing.T, kind, cmd string) tollgateContainer {
	t.Helper()
	var found []tollgateContainer
	for _, tc := range b.tollgate() {
		if tc.w.kind == kind && tc.cmd == cmd {
			found = append(found, tc)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s containers run %s %s, want exactly 1", len(found), kind, b.image, cmd)
	}
	return found[0]
}

// parseArgs splits a tollgate command line into its command (the leading
// words) and its flags. The binary itself judges whether it accepts them
// (TestTollgateCommandLines); this only reads the values.
func parseArgs(args []string) (cmd string, flags map[string]string, err error) {
	var words []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		words, args = append(words, args[0]), args[1:]
	}
	if len(words) == 0 {
		return "", nil, fmt.Errorf("arguments %q name no tollgate command", args)
	}
	flags = map[string]string{}
	for i := 0; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			return "", nil, fmt.Errorf("argument %q after the flags", args[i])
		}
		name := strings.TrimLeft(args[i], "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			flags[k] = v
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			flags[name] = args[i+1]
			i++
		} else {
			flags[name] = "true"
		}
	}
	return strings.Join(words, " "), flags, nil
}

// splitImage splits an image reference into repository, tag and digest.
func splitImage(image string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// binDir holds the binary buildBinary makes; TestMain removes it.
var binDir string

// buildBinary builds the tollgate command once, for the tests that ask
// it what it accepts.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tollgate-deploy-test-")
	if err != nil {
		return "", err
	}
	binDir = dir
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build tollgate: %w", err)
	}
	bin := filepath.Join(dir, "tollgate")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/tollgate-proxy/tollgate/cmd/tollgate")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tollgate: %w\n%s", err, out)
	}
	return bin, nil
})

func removeBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

func tollgateBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runTollgate runs the binary and returns its exit code and output.
func runTollgate(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tollgateBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("run tollgate %q: %v", args, err)
	return 0, ""
}

// mountedFile returns the ConfigMap or Secret key a container sees at
// file, with the kind of the object.
func (b *bundle) mountedFile(spec *corev1.PodSpec, c *corev1.Container, file string) (kind string, data []byte, err error) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if m.SubPath != "" {
			rel, ok = m.SubPath, file == m.MountPath
		}
		if !ok {
			continue
		}
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			return "", nil, fmt.Errorf("%s is on volume %s, which the pod does not have", file, m.Name)
		}
		v := spec.Volumes[i]
		switch {
		case v.ConfigMap != nil:
			cm, ok := b.configMaps[v.ConfigMap.Name]
			if !ok {
				return "", nil, fmt.Errorf("%s: ConfigMap %s is not in the build", file, v.ConfigMap.Name)
			}
			if d, ok := cm.Data[itemKey(v.ConfigMap.Items, rel)]; ok {
				return "ConfigMap", []byte(d), nil
			}
			return "", nil, fmt.Errorf("%s: ConfigMap %s has no key for %s", file, v.ConfigMap.Name, rel)
		case v.Secret != nil:
			s, ok := b.secrets[v.Secret.SecretName]
			if !ok {
				return "", nil, fmt.Errorf("%s: Secret %s is not in the build", file, v.Secret.SecretName)
			}
			if d, ok := s.Data[itemKey(v.Secret.Items, rel)]; ok {
				return "Secret", d, nil
			}
			return "", nil, fmt.Errorf("%s: Secret %s has no key for %s", file, v.Secret.SecretName, rel)
		}
		return "", nil, fmt.Errorf("%s is on volume %s, which is neither a ConfigMap nor a Secret", file, m.Name)
	}
	return "", nil, fmt.Errorf("no volume is mounted at %s", file)
}

// secretVolume returns the Secret volume a container sees file on, and
// the mode the kubelet gives the file.
func secretVolume(spec *corev1.PodSpec, c *corev1.Container, file string) (*corev1.SecretVolumeSource, int32, error) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if m.SubPath != "" {
			rel, ok = m.SubPath, file == m.MountPath
		}
		if !ok {
			continue
		}
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || spec.Volumes[i].Secret == nil {
			return nil, 0, fmt.Errorf("%s is not on a Secret volume", file)
		}
		s := spec.Volumes[i].Secret
		mode := corev1.SecretVolumeSourceDefaultMode
		if s.DefaultMode != nil {
			mode = *s.DefaultMode
		}
		for _, it := range s.Items {
			if it.Path == rel && it.Mode != nil {
				mode = *it.Mode
			}
		}
		return s, mode, nil
	}
	return nil, 0, fmt.Errorf("no volume is mounted at %s", file)
}

// checkSecretFile checks that the process of a container can read a
// file of a Secret volume and that other users cannot. The kubelet writes
// such files owned by root, and by the group fsGroup when the pod sets
// one, which it also gives the process.
func checkSecretFile(t *testing.T, where string, spec *corev1.PodSpec, c *corev1.Container, file string) {
	t.Helper()
	_, mode, err := secretVolume(spec, c, file)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	var uid *int64
	if c.SecurityContext != nil {
		uid = c.SecurityContext.RunAsUser
	}
	uid = orInt(uid, psc.RunAsUser)
	switch {
	case mode&0o007 != 0:
		t.Errorf("%s: %s has mode %#o: every user of the container may read it (set defaultMode 0440 and fsGroup)", where, file, mode)
	case uid != nil && *uid == 0:
	case psc.FSGroup == nil || mode&0o040 == 0:
		t.Errorf("%s: %s is root's with mode %#o and the pod's fsGroup is %v: uid %v cannot read it (set defaultMode 0440 and fsGroup to the process's group)",
			where, file, mode, psc.FSGroup, uid)
	}
}

// itemKey maps a path inside a ConfigMap or Secret volume to its key.
func itemKey(items []corev1.KeyToPath, rel string) string {
	if len(items) == 0 {
		return rel
	}
	for _, it := range items {
		if it.Path == rel {
			return it.Key
		}
	}
	return ""
}

// secretEnv returns the value of a container's env var that comes from a
// Secret; ok is false when the variable is missing or set another way.
func (b *bundle) secretEnv(c *corev1.Container, name string) (value string, ok bool) {
	for _, e := range c.Env {
		if e.Name != name || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		r := e.ValueFrom.SecretKeyRef
		if s, found := b.secrets[r.Name]; found {
			v, has := s.Data[r.Key]
			return string(v), has
		}
	}
	return "", false
}

// config returns the configuration the storeconfig Job publishes, which
// is the one the replicas follow, validated by tollgate's own parser.
func (b *bundle) config(t *testing.T) *config.Config {
	t.Helper()
	job := b.running(t, "Job", "storeconfig")
	file := job.flags["config"]
	if file == "" {
		t.Fatalf("%s: storeconfig has no --config", job)
	}
	kind, doc, err := b.mountedFile(&job.w.pod.Spec, job.c, file)
	if err != nil {
		t.Fatalf("%s: --config: %v", job, err)
	}
	if kind != "ConfigMap" {
		t.Fatalf("%s: --config %s comes from a %s, want a ConfigMap", job, file, kind)
	}
	cfg, err := config.Parse(path.Base(file), doc)
	if err != nil {
		t.Fatalf("%s: --config %s is not a valid tollgate configuration:\n%v", job, file, err)
	}
	serve := b.running(t, "Deployment", "serve")
	if f := serve.flags["config"]; f != "" {
		if _, own, err := b.mountedFile(&serve.w.pod.Spec, serve.c, f); err != nil || string(own) != string(doc) {
			t.Errorf("%s: serve --config %s differs from the file storeconfig publishes (%v)", serve, f, err)
		}
	}
	return cfg
}

// listenPort returns the port of an entry point's address.
func listenPort(address string) (int32, error) {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	return int32(n), err
}

// apiEntryPoint returns the entry point of /ping and /ready.
func apiEntryPoint(cfg *config.Config) (string, *config.EntryPoint) {
	name := "api"
	if cfg.API != nil {
		name = cmp.Or(cfg.API.EntryPoint, name)
	}
	return name, cfg.EntryPoints[name]
}

// dockerImage is what the final stage of deploy/Dockerfile sets, and the
// stages that lead to it.
type dockerImage struct {
	user       string
	entrypoint []string
	// copiesFrom are the stages the final stage copies from (COPY --from).
	copiesFrom []string
	stages     []dockerStage
}

// dockerStage is one FROM of the Dockerfile and what runs in it.
type dockerStage struct {
	name, image string
	// platform is FROM's --platform, "" without one.
	platform string
	runs     []dockerRun
}

// dockerRun is one RUN instruction, with the ARGs the stage declared
// before it.
type dockerRun struct {
	command string
	args    []string
}

func readDockerfile(t *testing.T) dockerImage {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var img dockerImage
	var args []string
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line += cont + " "
			continue
		}
		line += text
		instr, rest, _ := strings.Cut(line, " ")
		line = ""
		stage := len(img.stages) - 1
		switch strings.ToUpper(instr) {
		case "FROM":
			var st dockerStage
			words := strings.Fields(rest)
			for i := 0; i < len(words); i++ {
				switch w := words[i]; {
				case strings.HasPrefix(w, "--platform="):
					st.platform = strings.TrimPrefix(w, "--platform=")
				case strings.EqualFold(w, "AS") && i+1 < len(words):
					st.name = words[i+1]
					i++
				case st.image == "":
					st.image = w
				}
			}
			img = dockerImage{stages: append(img.stages, st)}
			args = nil
		case "ARG":
			for _, a := range strings.Fields(rest) {
				name, _, _ := strings.Cut(a, "=")
				args = append(args, name)
			}
		case "RUN":
			if stage >= 0 {
				img.stages[stage].runs = append(img.stages[stage].runs, dockerRun{command: rest, args: slices.Clone(args)})
			}
		case "COPY":
			for _, w := range strings.Fields(rest) {
				if from, ok := strings.CutPrefix(w, "--from="); ok {
					img.copiesFrom = append(img.copiesFrom, from)
				}
			}
		case "USER":
			img.user = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &img.entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT %s is not in exec form: %v", rest, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(img.stages) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	return img
}

// goBuildEnv returns the environment assignments before "go build" in a
// RUN command, and whether it runs go build at all.
func goBuildEnv(command string) (map[string]string, bool) {
	for _, part := range strings.Split(command, "&&") {
		before, _, ok := strings.Cut(part, "go build")
		if !ok {
			continue
		}
		env := map[string]string{}
		for _, w := range strings.Fields(before) {
			if k, v, ok := strings.Cut(w, "="); ok {
				env[k] = v
			}
		}
		return env, true
	}
	return nil, false
}

// TestDockerfileBuildStage checks that the stages the image copies from
// run on the build machine and cross-compile a static binary for the
// target platform: FROM --platform=$BUILDPLATFORM, and go build with
// CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH, whose ARGs the stage
// declares (BuildKit's automatic platform ARGs are empty inside a stage
// that does not).
func TestDockerfileBuildStage(t *testing.T) {
	img := readDockerfile(t)
	final := img.stages[len(img.stages)-1]
	if strings.Contains(final.platform, "BUILDPLATFORM") {
		t.Errorf("Dockerfile: the final stage is FROM --platform=%s: it must be the target platform's image", final.platform)
	}
	if len(img.copiesFrom) == 0 {
		t.Fatal("Dockerfile: the final stage copies from no build stage")
	}
	for _, from := range img.copiesFrom {
		i := slices.IndexFunc(img.stages, func(s dockerStage) bool { return s.name == from })
		if i < 0 {
			continue // an image, not a stage
		}
		st := img.stages[i]
		if p := st.platform; p != "$BUILDPLATFORM" && p != "${BUILDPLATFORM}" {
			t.Errorf("Dockerfile: stage %s is FROM --platform=%q, want $BUILDPLATFORM: without it, a build for another platform runs the compiler under emulation", st.name, p)
		}
		builds := 0
		for _, run := range st.runs {
			env, ok := goBuildEnv(run.command)
			if !ok {
				continue
			}
			builds++
			want := map[string]string{"CGO_ENABLED": "0", "GOOS": "$TARGETOS", "GOARCH": "$TARGETARCH"}
			for _, k := range slices.Sorted(maps.Keys(want)) {
				if v := strings.NewReplacer("{", "", "}", "").Replace(env[k]); v != want[k] {
					t.Errorf("Dockerfile: stage %s: go build with %s=%q, want %s", st.name, k, env[k], want[k])
				}
			}
			for _, arg := range []string{"TARGETOS", "TARGETARCH"} {
				if !slices.Contains(run.args, arg) {
					t.Errorf("Dockerfile: stage %s: no ARG %s before go build: it would be empty, and the binary built for the build machine", st.name, arg)
				}
			}
		}
		if builds == 0 {
			t.Errorf("Dockerfile: stage %s runs no go build", st.name)
		}
	}
}

func TestTollgateContainers(t *testing.T) {
	img := readDockerfile(t)
	uid, _, _ := strings.Cut(img.user, ":")
	if _, err := strconv.Atoi(uid); err != nil || uid == "0" {
		t.Errorf("Dockerfile: USER %q, want a numeric non-root uid", img.user)
	}
	if len(img.entrypoint) != 1 || path.Base(img.entrypoint[0]) != "tollgate" {
		t.Errorf("Dockerfile: ENTRYPOINT %q, want the tollgate binary alone", img.entrypoint)
	}
	eachBundle(t, func(t *testing.T, b *bundle) {
		images := map[string]bool{}
		for _, tc := range b.tollgate() {
			images[tc.c.Image] = true
			if tc.err != nil {
				t.Errorf("%s: args: %v", tc, tc.err)
			}
			if len(tc.c.Command) > 0 {
				t.Errorf("%s: command %q replaces the image's ENTRYPOINT %q; give the tollgate command in args", tc, tc.c.Command, img.entrypoint)
			}
			psc := tc.w.pod.Spec.SecurityContext
			var podUID *int64
			if psc != nil {
				podUID = psc.RunAsUser
			}
			var scUID *int64
			if tc.c.SecurityContext != nil {
				scUID = tc.c.SecurityContext.RunAsUser
			}
			if got := orInt(scUID, podUID); got == nil {
				t.Errorf("%s: sets no runAsUser; the image's USER is %s", tc, uid)
			} else if strconv.FormatInt(*got, 10) != uid {
				t.Errorf("%s: runs as uid %d, but the image's USER is %s", tc, *got, uid)
			}
		}
		if len(images) != 1 {
			t.Errorf("tollgate runs from %d different images %v; the Job and the replicas must run the same version", len(images), slices.Sorted(maps.Keys(images)))
		}
		b.running(t, "Deployment", "serve")
		b.running(t, "Job", "storeconfig")
	})
}

func TestTollgateCommandLines(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, tc := range b.tollgate() {
			// Flags are parsed before anything runs: with -h last, the
			// binary exits 0 if it accepts every argument before it, and
			// 2 on an unknown flag, a bad value or a stray argument.
			code, out := runTollgate(t, nil, append(slices.Clone(tc.c.Args), "-h")...)
			if code != 0 {
				t.Errorf("%s: tollgate does not accept the arguments %q (exit code %d):\n%s", tc, tc.c.Args, code, out)
			}
		}
	})
}

func TestTollgateConfiguration(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		cfg := b.config(t)
		serve := b.running(t, "Deployment", "serve")
		spec := &serve.w.pod.Spec
		if cfg.API == nil {
			t.Errorf("the configuration has no [api]: nothing would answer the probes' /ping and /ready")
		}
		if s := cfg.Store; s != nil {
			if s.Endpoint != "" && s.Endpoint != serve.flags["kv"] || s.Prefix != "" && s.Prefix != serve.flags["prefix"] {
				t.Errorf("the configuration's [store] (%q, %q) contradicts --kv %q --prefix %q", s.Endpoint, s.Prefix, serve.flags["kv"], serve.flags["prefix"])
			}
		}
		// Where each entry point listens, and where the load balancer
		// publishes it.
		listens := map[string]int32{}
		for _, name := range slices.Sorted(maps.Keys(cfg.EntryPoints)) {
			port, err := listenPort(cfg.EntryPoints[name].Address)
			if err != nil {
				t.Errorf("entry point %s: address %q: %v", name, cfg.EntryPoints[name].Address, err)
				continue
			}
			listens[name] = port
			if cp, ok := containerPort(spec, "", port); !ok || cp.Name == "" || protocolOf(cp.Protocol) != corev1.ProtocolTCP {
				t.Errorf("entry point %s listens on %d, which %s does not declare as a named TCP port", name, port, serve)
			}
		}
		public := b.publishedEntryPoints(t, serve, listens)
		for name, ports := range public {
			ep := cfg.EntryPoints[name]
			tls := ep.HTTP != nil && ep.HTTP.TLS != nil
			for _, p := range ports {
				if p == 443 && !tls || p == 80 && tls {
					t.Errorf("the load balancer publishes entry point %s (TLS %t) on port %d", name, tls, p)
				}
			}
			// A redirection names the target's own port unless it is the
			// scheme's default: it must be the port clients reach it on.
			if ep.HTTP != nil && ep.HTTP.Redirections != nil && ep.HTTP.Redirections.EntryPoint != nil {
				to := ep.HTTP.Redirections.EntryPoint.To
				for _, p := range public[to] {
					if p != listens[to] {
						t.Errorf("entry point %s redirects to %s, which listens on %d but is published on %d: redirected clients would get the wrong port", name, to, listens[to], p)
					}
				}
				if len(public[to]) == 0 {
					t.Errorf("entry point %s redirects to %s, which the load balancer does not publish", name, to)
				}
			}
		}
		apiName, _ := apiEntryPoint(cfg)
		if len(public[apiName]) > 0 {
			t.Errorf("the load balancer publishes the API entry point %s on %v; keep it inside the cluster", apiName, public[apiName])
		}
		if a := cfg.ACME; a != nil {
			if c := a.HTTPChallenge; c != nil && !slices.Contains(public[c.EntryPoint], 80) {
				t.Errorf("acme.httpChallenge answers on entry point %s, which the load balancer does not publish on port 80", c.EntryPoint)
			}
			if a.TLSChallenge != nil && !slices.ContainsFunc(slices.Collect(maps.Keys(public)), func(n string) bool { return slices.Contains(public[n], 443) }) {
				t.Errorf("acme.tlsChallenge needs an entry point published on port 443")
			}
		}
		if !b.servesInside(spec, listens[apiName]) {
			t.Errorf("no ClusterIP Service publishes the API entry point %s (port %d) of %s", apiName, listens[apiName], serve.w)
		}
	})
}

// publishedEntryPoints maps each entry point to the ports the
// LoadBalancer Service publishes it on.
func (b *bundle) publishedEntryPoints(t *testing.T, serve tollgateContainer, listens map[string]int32) map[string][]int32 {
	t.Helper()
	public := map[string][]int32{}
	lbs := 0
	for _, name := range slices.Sorted(maps.Keys(b.services)) {
		svc := b.services[name]
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(serve.w.pod.Labels)) {
			continue
		}
		lbs++
		for _, p := range svc.Spec.Ports {
			cp, ok := containerPort(&serve.w.pod.Spec, p.TargetPort.StrVal, p.TargetPort.IntVal)
			if !ok {
				continue // TestServices reports it
			}
			ep := ""
			for n, port := range listens {
				if port == cp.ContainerPort {
					ep = n
				}
			}
			if ep == "" {
				t.Errorf("Service %s: port %d reaches container port %d, where no entry point listens", name, p.Port, cp.ContainerPort)
				continue
			}
			public[ep] = append(public[ep], p.Port)
		}
	}
	if lbs != 1 {
		t.Errorf("%d LoadBalancer Services select the pods of %s, want 1", lbs, serve.w)
	}
	return public
}

// servesInside reports whether a ClusterIP Service publishes port of the
// pods spec belongs to.
func (b *bundle) servesInside(spec *corev1.PodSpec, port int32) bool {
	for _, svc := range b.services {
		if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if cp, ok := containerPort(spec, p.TargetPort.StrVal, p.TargetPort.IntVal); ok && cp.ContainerPort == port {
				return true
			}
		}
	}
	return false
}

func TestTollgateProbes(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		cfg := b.config(t)
		serve := b.running(t, "Deployment", "serve")
		apiName, ep := apiEntryPoint(cfg)
		if ep == nil {
			t.Fatalf("the API entry point %q is not defined", apiName)
		}
		port, err := listenPort(ep.Address)
		if err != nil {
			t.Fatalf("entry point %s: %v", apiName, err)
		}
		scheme := corev1.URISchemeHTTP
		if ep.HTTP != nil && ep.HTTP.TLS != nil {
			scheme = corev1.URISchemeHTTPS
		}
		tests := []struct {
			name  string
			probe *corev1.Probe
			// notReady is what the probe must report about a replica that
			// is not ready (starting, or draining): liveness must not fail
			// then, or the kubelet would kill a draining replica.
			notReady int
		}{
			{"startupProbe", serve.c.StartupProbe, http.StatusOK},
			{"livenessProbe", serve.c.LivenessProbe, http.StatusOK},
			{"readinessProbe", serve.c.ReadinessProbe, http.StatusServiceUnavailable},
		}
		for _, tt := range tests {
			if tt.probe == nil {
				if tt.name != "startupProbe" {
					t.Errorf("%s: no %s", serve, tt.name)
				}
				continue
			}
			get := tt.probe.HTTPGet
			if get == nil {
				t.Errorf("%s: %s is not an httpGet probe", serve, tt.name)
				continue
			}
			if cp, ok := containerPort(&serve.w.pod.Spec, get.Port.StrVal, get.Port.IntVal); !ok || cp.ContainerPort != port {
				t.Errorf("%s: %s probes port %s, but /ping and /ready are served on entry point %s, port %d", serve, tt.name, get.Port.String(), apiName, port)
			}
			if got := cmp.Or(get.Scheme, corev1.URISchemeHTTP); got != scheme {
				t.Errorf("%s: %s uses %s, entry point %s speaks %s", serve, tt.name, got, apiName, scheme)
			}
			ops := &router.Ops{}
			req := httptest.NewRequest(http.MethodGet, get.Path, nil)
			if !ops.Claims(req) {
				t.Errorf("%s: %s asks for %q, which tollgate's operations endpoints do not serve", serve, tt.name, get.Path)
				continue
			}
			if code := probe(ops, req); code != tt.notReady {
				t.Errorf("%s: %s %s answers %d for a replica that is not ready, want %d", serve, tt.name, get.Path, code, tt.notReady)
			}
			ops.SetReady(true)
			if code := probe(ops, req); code != http.StatusOK {
				t.Errorf("%s: %s %s answers %d for a ready replica, want 200", serve, tt.name, get.Path, code)
			}
		}
	})
}

func probe(h http.Handler, req *http.Request) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// The drain settings tollgate uses when [lifecycle] leaves them out
// (config.Lifecycle documents them).
const (
	defaultDrainDelay   = 5 * time.Second
	defaultGraceTimeout = 10 * time.Second
	// leaveTime is what stopping takes after the grace timeout: resigning
	// leadership and leaving the node registry.
	leaveTime = 5 * time.Second
	// localTrafficPreStop is the least preStop sleep with a LoadBalancer
	// Service of externalTrafficPolicy Local: a cloud load balancer learns
	// that a node has no ready endpoint left only from its health check
	// of the node, which takes 10 to 30 seconds.
	localTrafficPreStop = 15 * time.Second
)

func TestShutdownTiming(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		cfg := b.config(t)
		serve := b.running(t, "Deployment", "serve")
		drain, grace := defaultDrainDelay, defaultGraceTimeout
		if lc := cfg.Lifecycle; lc != nil {
			drain, grace = cmp.Or(lc.DrainDelay.Std(), drain), cmp.Or(lc.GraceTimeout.Std(), grace)
		}
		var preStop time.Duration
		if l := serve.c.Lifecycle; l != nil && l.PreStop != nil {
			switch {
			case l.PreStop.Sleep != nil:
				preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
			case l.PreStop.Exec != nil:
				t.Errorf("%s: preStop runs %q, but the image has no shell and no programs besides tollgate; use the sleep action", serve, l.PreStop.Exec.Command)
			}
		}
		period := 30 * time.Second
		if s := serve.w.pod.Spec.TerminationGracePeriodSeconds; s != nil {
			period = time.Duration(*s) * time.Second
		}
		if need := preStop + drain + grace + leaveTime; period < need {
			t.Errorf("terminationGracePeriodSeconds is %s, want at least %s: preStop sleep %s + lifecycle.drainDelay %s + lifecycle.graceTimeout %s + %s to leave the cluster",
				period, need, preStop, drain, grace, leaveTime)
		}
		for _, name := range slices.Sorted(maps.Keys(b.services)) {
			svc := b.services[name]
			if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal &&
				labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(serve.w.pod.Labels)) && preStop < localTrafficPreStop {
				t.Errorf("Service %s has externalTrafficPolicy Local, but the preStop sleep is %s: the cloud load balancer's health check of the node needs 10-30 s to notice the replica going; sleep at least %s",
					name, preStop, localTrafficPreStop)
			}
		}
		if r := serve.c.ReadinessProbe; r != nil {
			notice := time.Duration(cmp.Or(r.PeriodSeconds, 10)*cmp.Or(r.FailureThreshold, 3)) * time.Second
			if notice > drain {
				t.Errorf("the readiness probe notices a drain after up to %s (periodSeconds x failureThreshold), longer than lifecycle.drainDelay %s", notice, drain)
			}
		}
	})
}

func TestEncryptionKey(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		cfg := b.config(t)
		if cfg.ACME == nil {
			t.Skip("no [acme]")
		}
		serve := b.running(t, "Deployment", "serve")
		file, env := cfg.ACME.EncryptionKeyFile, cfg.ACME.EncryptionKeyEnv
		getenv := func(name string) string {
			v, _ := b.secretEnv(serve.c, name)
			return v
		}
		switch {
		case env != "":
			if _, ok := b.secretEnv(serve.c, env); !ok {
				t.Fatalf("%s: acme.encryptionKeyEnv is %s, but the container does not set it from a Secret", serve, env)
			}
		case file != "":
			kind, data, err := b.mountedFile(&serve.w.pod.Spec, serve.c, file)
			if err != nil || kind != "Secret" {
				t.Fatalf("%s: acme.encryptionKeyFile %s is not a mounted Secret key: %v", serve, file, err)
			}
			checkSecretFile(t, serve.String()+": acme.encryptionKeyFile", &serve.w.pod.Spec, serve.c, file)
			file = filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err := acme.LoadKeyring(file, env, cfg.ACME.InsecurePlaintextKeys, getenv)
		switch {
		case b.shipped && err == nil:
			t.Errorf("%s: the placeholder encryption key works as a key; it must make tollgate refuse to start", serve)
		case !b.shipped && err != nil:
			t.Errorf("%s: the encryption key does not load: %v", serve, err)
		}
		job := b.running(t, "Job", "storeconfig")
		if _, ok := b.secretEnv(job.c, env); env != "" && ok {
			t.Errorf("%s: storeconfig gets the encryption key %s, which it never needs", job, env)
		}
		if cfg.ACME.EncryptionKeyFile != "" {
			src, _, _ := secretVolume(&serve.w.pod.Spec, serve.c, cfg.ACME.EncryptionKeyFile)
			for _, v := range job.w.pod.Spec.Volumes {
				if src != nil && v.Secret != nil && v.Secret.SecretName == src.SecretName {
					t.Errorf("%s: storeconfig mounts the encryption key's Secret %s, which it never needs", job, src.SecretName)
				}
			}
		}
	})
}

func TestEnvironment(t *testing.T) {
	podName := podNameIsNodeID(t)
	eachBundle(t, func(t *testing.T, b *bundle) {
		cfg := b.config(t)
		st := b.store(t)
		for _, tc := range b.tollgate() {
			for _, e := range tc.c.Env {
				var read bool
				switch {
				case e.Name == "POD_NAME":
					read = podName
					if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
						t.Errorf("%s: POD_NAME is not the pod's metadata.name", tc)
					}
				case cfg.ACME != nil && e.Name == cfg.ACME.EncryptionKeyEnv:
					read = true
				case slices.Contains(goRuntimeEnv, e.Name):
					read = true
				case st.readsEnv(t, e.Name):
					read = true
				}
				if !read {
					t.Errorf("%s: env %s is not read by tollgate (with this configuration and store)", tc, e.Name)
				}
			}
		}
		serve := b.running(t, "Deployment", "serve")
		if !slices.ContainsFunc(serve.c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAME" }) {
			t.Errorf("%s: no POD_NAME: the replica's node id would not be its pod's name", serve)
		}
	})
}

// goRuntimeEnv are environment variables the Go runtime of every Go
// program reads.
var goRuntimeEnv = []string{"GOMEMLIMIT", "GOGC", "GOMAXPROCS", "GODEBUG"}

func TestTollgateResources(t *testing.T) {
	// Resident memory at 10,000 certificates is 98-137 MiB
	// (docs/benchmarks.md): requesting less would let nodes be
	// overcommitted with replicas that then get OOM-killed.
	minMemory := resource.MustParse("256Mi")
	eachBundle(t, func(t *testing.T, b *bundle) {
		serve := b.running(t, "Deployment", "serve")
		res := serve.c.Resources
		if _, ok := res.Limits[corev1.ResourceCPU]; ok {
			t.Errorf("%s: a CPU limit throttles the proxy in bursts, adding latency to requests; request CPU but do not limit it", serve)
		}
		if _, ok := res.Requests[corev1.ResourceCPU]; !ok {
			t.Errorf("%s: no CPU request: the scheduler and the autoscaler need one", serve)
		}
		req, limit := res.Requests[corev1.ResourceMemory], res.Limits[corev1.ResourceMemory]
		if req.Cmp(minMemory) < 0 {
			t.Errorf("%s: memory request %s, want at least %s", serve, req.String(), minMemory.String())
		}
		if limit.IsZero() || limit.Cmp(req) < 0 {
			t.Errorf("%s: memory limit %s, want one at least the request %s", serve, limit.String(), req.String())
		}
		// Without GOMEMLIMIT the heap may double before a collection and
		// cross the limit.
		i := slices.IndexFunc(serve.c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
		if i < 0 {
			t.Fatalf("%s: no GOMEMLIMIT: the Go runtime does not know the memory limit", serve)
		}
		e := serve.c.Env[i]
		if e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil {
			t.Fatalf("%s: GOMEMLIMIT is not taken from the container's memory limit (resourceFieldRef limits.memory)", serve)
		}
		r := e.ValueFrom.ResourceFieldRef
		// GOMEMLIMIT is in bytes: the divisor must be 1.
		if r.Resource != "limits.memory" || r.ContainerName != "" && r.ContainerName != serve.c.Name || !r.Divisor.IsZero() && r.Divisor.Value() != 1 {
			t.Errorf("%s: GOMEMLIMIT is resourceFieldRef %s of container %q, divisor %s; want limits.memory of its own container, divisor 1", serve, r.Resource, r.ContainerName, r.Divisor.String())
		}
	})
}

func TestStoreconfigJob(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		job := b.running(t, "Job", "storeconfig")
		j := b.jobs[job.w.name]
		if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 3 || *j.Spec.BackoffLimit > 20 {
			t.Errorf("%s: backoffLimit %v, want 3 to 20: enough to wait for the store, not retrying for ever", job, j.Spec.BackoffLimit)
		}
		if job.w.pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			return
		}
		// A node drain must not count as a failure.
		p := j.Spec.PodFailurePolicy
		if p == nil || !slices.ContainsFunc(p.Rules, func(r batchv1.PodFailurePolicyRule) bool {
			return r.Action == batchv1.PodFailurePolicyActionIgnore && slices.ContainsFunc(r.OnPodConditions, func(c batchv1.PodFailurePolicyOnPodConditionsPattern) bool {
				return c.Type == corev1.DisruptionTarget
			})
		}) {
			t.Errorf("%s: podFailurePolicy has no rule ignoring the DisruptionTarget condition: evictions count against backoffLimit", job)
		}
	})
}

// podNameIsNodeID reports whether tollgate serve takes its node id from
// POD_NAME: given an id that is not a valid key, it must refuse to start
// and name it.
func podNameIsNodeID(t *testing.T) bool {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "tollgate.toml")
	doc := fmt.Sprintf("[store]\nendpoint = %q\n\n[entryPoints.web]\naddress = \"127.0.0.1:0\"\n", "file:"+filepath.Join(dir, "state.db"))
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	const id = "not a node id"
	code, out := runTollgate(t, []string{"POD_NAME=" + id}, "serve", "--config", file)
	// The error ends serve as a log record, whose text format quotes it.
	want := fmt.Sprintf("node id %q", id)
	if code != 2 || !strings.Contains(out, want) && !strings.Contains(out, strings.Trim(strconv.Quote(want), `"`)) {
		t.Errorf("tollgate serve with POD_NAME=%q exited %d without naming that node id; does it still read POD_NAME?\n%s", id, code, out)
		return false
	}
	return true
}
