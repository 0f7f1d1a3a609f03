package deploy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// readmeFile documents the manifests; its example overlay is built and
// checked like the shipped kustomizations.
var readmeFile = filepath.Join("kubernetes", "README.md")

// readmeOverlay is the part of the example overlay the tests read.
type readmeOverlay struct {
	Namespace string   `json:"namespace"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
	SecretGenerator    []generator `json:"secretGenerator"`
	ConfigMapGenerator []generator `json:"configMapGenerator"`
}

type generator struct {
	Name     string   `json:"name"`
	Behavior string   `json:"behavior"`
	Files    []string `json:"files"`
}

// kustomizationBlock returns the first ```yaml block of a Markdown text
// that is a Kustomization.
func kustomizationBlock(md []byte) ([]byte, error) {
	rest := md
	for {
		_, after, ok := bytes.Cut(rest, []byte("```yaml\n"))
		if !ok {
			return nil, errors.New("no ```yaml block with kind: Kustomization")
		}
		block, tail, ok := bytes.Cut(after, []byte("```"))
		if !ok {
			return nil, errors.New("unterminated ```yaml block")
		}
		if bytes.Contains(block, []byte("kind: Kustomization")) {
			return block, nil
		}
		rest = tail
	}
}

// buildReadmeOverlay builds the example overlay of README.md in a
// temporary directory, with its resource pointed at this checkout and
// real values in the files its generators read.
func buildReadmeOverlay() (*bundle, error) {
	md, err := os.ReadFile(readmeFile)
	if err != nil {
		return nil, err
	}
	block, err := kustomizationBlock(md)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(block, &doc); err != nil {
		return nil, err
	}
	var ov readmeOverlay
	if err := yaml.Unmarshal(block, &ov); err != nil {
		return nil, err
	}
	if len(ov.Resources) != 1 {
		return nil, fmt.Errorf("resources %q: want the one kustomization it builds on", ov.Resources)
	}
	_, local, ok := strings.Cut(ov.Resources[0], "deploy/")
	if !ok {
		return nil, fmt.Errorf("resource %q is not in deploy/ of the repository", ov.Resources[0])
	}
	local, _, _ = strings.Cut(local, "?")
	base, err := filepath.Abs(filepath.FromSlash(local))
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tollgate-overlay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// Kustomize takes no absolute paths of kustomizations.
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		return nil, err
	}
	doc["resources"] = []string{filepath.ToSlash(rel)}
	for _, g := range append(ov.SecretGenerator, ov.ConfigMapGenerator...) {
		for _, f := range g.Files {
			_, file, ok := strings.Cut(f, "=")
			if !ok {
				file = f
			}
			content, err := exampleContent(ov.Namespace, g.Name, file)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, file), content, 0o600); err != nil {
				return nil, err
			}
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), out, 0o600); err != nil {
		return nil, err
	}
	b, err := build("readme-overlay", dir)
	if err != nil {
		return nil, err
	}
	b.shipped, b.namespace = false, ov.Namespace
	for _, img := range ov.Images {
		if img.Name == tollgateImage && img.NewName != "" {
			b.image = img.NewName
		}
	}
	return b, nil
}

// exampleContent makes what an operator would put in a generator's file:
// a configuration, a fresh encryption key, or a token or password. The
// configuration is the base's, with the published Service in the
// overlay's namespace, as README.md tells.
func exampleContent(namespace, generator, file string) ([]byte, error) {
	if strings.HasSuffix(file, ".toml") {
		doc, err := os.ReadFile(filepath.Join("kubernetes", "base", "tollgate.toml"))
		if err != nil {
			return nil, err
		}
		const base = `publishedService = "default/`
		if !bytes.Contains(doc, []byte(base)) {
			return nil, fmt.Errorf("kubernetes/base/tollgate.toml has no %s...: README.md's overlay changes its namespace", base)
		}
		return bytes.ReplaceAll(doc, []byte(base), []byte(`publishedService = "`+namespace+`/`)), nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if strings.Contains(generator, "encryption-key") {
		return []byte(base64.StdEncoding.EncodeToString(key) + "\n"), nil
	}
	return []byte(hex.EncodeToString(key[:16]) + "\n"), nil
}

func TestReadmeOverlay(t *testing.T) {
	md, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	block, err := kustomizationBlock(md)
	if err != nil {
		t.Fatalf("%s: %v", readmeFile, err)
	}
	var ov readmeOverlay
	if err := yaml.Unmarshal(block, &ov); err != nil {
		t.Fatalf("%s: the example overlay: %v", readmeFile, err)
	}
	var b *bundle
	for _, x := range bundles(t) {
		if !x.shipped && !x.chart {
			b = x
		}
	}
	if b == nil {
		t.Fatal("the README overlay was not built")
	}
	if ov.Namespace == "" {
		t.Errorf("%s: the example overlay sets no namespace", readmeFile)
	}
	// The overlay's tollgate.toml must name the published Service in the
	// overlay's namespace: the base's names "default".
	if want := fmt.Sprintf(`publishedService = "%s/`, ov.Namespace); !strings.Contains(string(md), want) {
		t.Errorf("%s: does not tell to set %s...\" in the overlay's tollgate.toml", readmeFile, want)
	}
	var image string
	for _, img := range ov.Images {
		if img.Name == tollgateImage {
			image = img.NewName + ":" + img.NewTag
		}
	}
	if image == ":" || strings.HasSuffix(image, ":") || strings.HasSuffix(image, ":latest") {
		t.Fatalf("%s: the example overlay does not set tollgate's image to a version (images: name: %s)", readmeFile, tollgateImage)
	}
	for _, tc := range b.tollgate() {
		if tc.c.Image != image {
			t.Errorf("%s: image %q, want %q from the overlay's images:", tc, tc.c.Image, image)
		}
	}
	replaced := map[string]bool{}
	for _, g := range ov.SecretGenerator {
		if g.Behavior == "replace" {
			replaced[g.Name] = true
		}
	}
	for name := range b.secrets {
		if gen := generatorName(name); !replaced[gen] {
			t.Errorf("%s: the example overlay does not replace Secret %s (generated as %s): it would keep the placeholder", readmeFile, gen, name)
		}
	}
}

// generatorName strips the content hash kustomize appends to the name of
// a generated ConfigMap or Secret.
func generatorName(name string) string {
	if i := strings.LastIndexByte(name, '-'); i >= 0 && len(name)-i-1 == 10 {
		return name[:i]
	}
	return name
}

// patchSource is one patch of a kustomization: a file, or an inline patch.
type patchSource struct {
	name string
	text []byte
}

// patchesOf returns the patches a kustomization directory applies.
func patchesOf(dir string) ([]patchSource, error) {
	doc, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Patches []struct {
			Path  string `json:"path"`
			Patch string `json:"patch"`
		} `json:"patches"`
		PatchesStrategicMerge []string `json:"patchesStrategicMerge"`
	}
	if err := yaml.Unmarshal(doc, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var out []patchSource
	files := slices.Clone(k.PatchesStrategicMerge)
	for i, p := range k.Patches {
		if p.Path != "" {
			files = append(files, p.Path)
		} else {
			out = append(out, patchSource{fmt.Sprintf("%s: patches[%d]", dir, i), []byte(p.Patch)})
		}
	}
	for _, f := range files {
		if strings.Contains(f, "\n") { // an inline patchesStrategicMerge entry
			out = append(out, patchSource{dir + ": an inline patch", []byte(f)})
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		out = append(out, patchSource{filepath.Join(dir, f), text})
	}
	return out, nil
}

// documentSeparator splits a YAML stream into its documents.
var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// TestPatchDeletes keeps every "$patch: delete" of a whole object in a
// patch of its own: kustomize before v5.7, in kubectl 1.30 to 1.33,
// panics on a patch with several of them (kustomize issue 5552).
func TestPatchDeletes(t *testing.T) {
	dirs, err := kustomizations()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		patches, err := patchesOf(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range patches {
			var deleted []string
			for _, doc := range documentSeparator.Split(string(p.text), -1) {
				var obj struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
					Patch string `json:"$patch"`
				}
				if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
					t.Errorf("%s: %v", p.name, err)
					continue
				}
				if obj.Patch == "delete" {
					deleted = append(deleted, obj.Kind+" "+obj.Metadata.Name)
				}
			}
			if len(deleted) > 1 {
				t.Errorf("%s deletes %d objects (%s): kustomize before v5.7 (kubectl 1.30-1.33) panics on that; give each its own patch file", p.name, len(deleted), strings.Join(deleted, ", "))
			}
		}
	}
}

// TestReadmeApply checks that README.md deletes the storeconfig Job before
// every "kubectl apply -k": its pod template names the generated
// ConfigMap and Secrets, whose names change with their content, and the
// API server refuses to change a Job's pod template.
func TestReadmeApply(t *testing.T) {
	md, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	var job string
	for _, b := range bundles(t) {
		if b.shipped {
			job = b.running(t, "Job", "storeconfig").w.name
			break
		}
	}
	deleteJob := regexp.MustCompile(`^kubectl( -n \S+)? delete job ` + regexp.QuoteMeta(job) + ` --ignore-not-found$`)
	applies := 0
	prev := ""
	for i, line := range strings.Split(string(md), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "kubectl apply -k ") {
			applies++
			if !deleteJob.MatchString(prev) {
				t.Errorf("%s:%d: %q without \"kubectl delete job %s --ignore-not-found\" on the line before: after a change of the configuration or a credential the apply fails with \"field is immutable\"", readmeFile, i+1, line, job)
			}
		}
		if line != "" {
			prev = line
		}
	}
	if applies == 0 {
		t.Errorf("%s: no \"kubectl apply -k\" found", readmeFile)
	}
}
