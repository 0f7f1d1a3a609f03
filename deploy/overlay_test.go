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
			content, err := exampleContent(g.Name, file)
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
// a configuration, a fresh encryption key, or a token or password.
func exampleContent(generator, file string) ([]byte, error) {
	if strings.HasSuffix(file, ".toml") {
		return os.ReadFile(filepath.Join("kubernetes", "base", "tollgate.toml"))
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
		if !x.shipped {
			b = x
		}
	}
	if b == nil {
		t.Fatal("the README overlay was not built")
	}
	if ov.Namespace == "" {
		t.Errorf("%s: the example overlay sets no namespace", readmeFile)
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
