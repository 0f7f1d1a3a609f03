package migrate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	netv1beta1 "k8s.io/api/networking/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// k8sObject is an object of a manifest that the Ingress checks read: an
// Ingress, a Service or an IngressClass.
type k8sObject struct {
	src  int    // the manifest's place in Options.Manifests, from 1
	file string // its name
	line int    // where the object starts
	kind string
	meta metav1.ObjectMeta
	// annLines are the lines of the annotations' keys.
	annLines map[string]int
	ing      *ingressSpec
	svcType  corev1.ServiceType
	class    *ingressClassSpec
}

// ingressSpec is what the checks need of an Ingress's spec, whatever its
// API version.
type ingressSpec struct {
	className string   // spec.ingressClassName
	tls       bool     // spec.tls is set
	paths     []string // of its rules, in order, without duplicates
	services  []string // the Services it routes to
}

// ingressClassSpec is an IngressClass.
type ingressClassSpec struct {
	controller string
	isDefault  bool
}

// id names an object in the report: "ingress default/web".
func (o *k8sObject) id() string {
	ns := o.meta.Namespace
	if ns == "" {
		ns = "default"
	}
	if o.kind == "IngressClass" {
		return "ingressclass " + o.meta.Name
	}
	return strings.ToLower(o.kind) + " " + ns + "/" + o.meta.Name
}

// namespace is the object's namespace, "default" when the manifest names
// none (as kubectl applies it with the default context).
func (o *k8sObject) namespace() string {
	if o.meta.Namespace == "" {
		return "default"
	}
	return o.meta.Namespace
}

// maxManifestBytes bounds one manifest file.
const maxManifestBytes = 64 << 20

// readManifest reads the objects of one manifest: every YAML document,
// and every item of a List (kubectl get -o yaml). A document that cannot
// be read is reported, and the others are read.
func (c *converter) readManifest(src int, m Manifest) []*k8sObject {
	if len(m.Data) > maxManifestBytes {
		c.manifestItem(src, m.Name, 0, "", Action, fmt.Sprintf("not read: %d bytes, at most %d", len(m.Data), maxManifestBytes), "split it and give the parts")
		return nil
	}
	var out []*k8sObject
	for _, d := range splitDocuments(m.Data) {
		objs, err := decodeDocument(d.data)
		if err != nil {
			c.manifestItem(src, m.Name, d.line, "", Action, "not read: "+err.Error(),
				"fix the document (kubectl would refuse it too), or render templates first (helm template), and convert again")
			continue
		}
		for _, o := range objs {
			o.src, o.file = src, m.Name
			o.line += d.line - 1
			for k, l := range o.annLines {
				o.annLines[k] = l + d.line - 1
			}
			out = append(out, o)
		}
	}
	return out
}

// document is one YAML document of a stream, and the line it starts on.
type document struct {
	line int
	data []byte
}

// splitDocuments splits a YAML stream at its "---" lines, as kubectl
// does, keeping the line each document starts on. Empty documents are
// dropped.
func splitDocuments(data []byte) []document {
	var out []document
	start, line := 1, 1
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur.Bytes()))) > 0 {
			out = append(out, document{line: start, data: slices.Clone(cur.Bytes())})
		}
		cur.Reset()
	}
	for l := range bytes.Lines(data) {
		t := bytes.TrimRight(l, "\r\n")
		if bytes.HasPrefix(t, []byte("---")) && (len(t) == 3 || t[3] == ' ' || t[3] == '\t') {
			flush()
			start = line + 1
			// Content after the marker ("--- {...}") starts the document.
			if rest := bytes.TrimSpace(t[3:]); len(rest) > 0 && rest[0] != '#' {
				start = line
				cur.Write(rest)
				cur.WriteByte('\n')
			}
		} else {
			if cur.Len() == 0 {
				start = line
			}
			cur.Write(l)
		}
		line++
	}
	flush()
	return out
}

// stripComments drops YAML comment lines, to tell an empty document.
func stripComments(b []byte) []byte {
	var out []byte
	for l := range bytes.Lines(b) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
		}
	}
	return out
}

// typeMeta is the start of every object, and the items of a List.
type typeMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

// decodeDocument decodes one document, with sigs.k8s.io/yaml as kubectl
// does, into the objects the checks read; other kinds are skipped. Lines
// are counted from the document's first line.
func decodeDocument(data []byte) ([]*k8sObject, error) {
	var tm typeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, cleanYAMLError(err)
	}
	// The same document as a node tree, for the lines of annotations.
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(data, &root); err != nil {
		return nil, cleanYAMLError(err)
	}
	top := &root
	if top.Kind == yamlv3.DocumentNode && len(top.Content) > 0 {
		top = top.Content[0]
	}
	if tm.Kind == "List" || strings.HasSuffix(tm.Kind, "List") && len(tm.Items) > 0 {
		items := mappingValue(top, "items")
		var out []*k8sObject
		for i, raw := range tm.Items {
			var node *yamlv3.Node
			if items != nil && i < len(items.Content) {
				node = items.Content[i]
			}
			var itm typeMeta
			if err := json.Unmarshal(raw, &itm); err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			o, err := decodeObject(itm, raw, node)
			if err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			if o != nil {
				out = append(out, o)
			}
		}
		return out, nil
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, cleanYAMLError(err)
	}
	o, err := decodeObject(tm, js, top)
	if err != nil || o == nil {
		return nil, err
	}
	return []*k8sObject{o}, nil
}

// decodeObject decodes one object from its JSON form; nil for kinds the
// checks do not read.
func decodeObject(tm typeMeta, js []byte, node *yamlv3.Node) (*k8sObject, error) {
	o := &k8sObject{kind: tm.Kind, annLines: map[string]int{}}
	fail := func(err error) (*k8sObject, error) {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	switch {
	case tm.Kind == "Ingress" && tm.APIVersion == "networking.k8s.io/v1":
		var in netv1.Ingress
		if err := json.Unmarshal(js, &in); err != nil {
			return fail(err)
		}
		o.meta = in.ObjectMeta
		s := &ingressSpec{tls: len(in.Spec.TLS) > 0}
		if in.Spec.IngressClassName != nil {
			s.className = *in.Spec.IngressClassName
		}
		if b := in.Spec.DefaultBackend; b != nil && b.Service != nil {
			s.add("/", b.Service.Name)
		}
		for _, r := range in.Spec.Rules {
			if r.HTTP != nil {
				for _, p := range r.HTTP.Paths {
					if p.Backend.Service != nil {
						s.add(p.Path, p.Backend.Service.Name)
					}
				}
			}
		}
		o.ing = s
	case tm.Kind == "Ingress" && (tm.APIVersion == "networking.k8s.io/v1beta1" || tm.APIVersion == "extensions/v1beta1"):
		// The two beta versions have the same fields.
		var in netv1beta1.Ingress
		if err := json.Unmarshal(js, &in); err != nil {
			return fail(err)
		}
		o.meta = in.ObjectMeta
		s := &ingressSpec{tls: len(in.Spec.TLS) > 0}
		if in.Spec.IngressClassName != nil {
			s.className = *in.Spec.IngressClassName
		}
		if b := in.Spec.Backend; b != nil {
			s.add("/", b.ServiceName)
		}
		for _, r := range in.Spec.Rules {
			if r.HTTP != nil {
				for _, p := range r.HTTP.Paths {
					s.add(p.Path, p.Backend.ServiceName)
				}
			}
		}
		o.ing = s
	case tm.Kind == "Ingress":
		return fail(fmt.Errorf("not an Ingress API version (networking.k8s.io/v1, networking.k8s.io/v1beta1 or extensions/v1beta1)"))
	case tm.Kind == "Service" && tm.APIVersion == "v1":
		var svc corev1.Service
		if err := json.Unmarshal(js, &svc); err != nil {
			return fail(err)
		}
		o.meta, o.svcType = svc.ObjectMeta, svc.Spec.Type
	case tm.Kind == "IngressClass" && (tm.APIVersion == "networking.k8s.io/v1" || tm.APIVersion == "networking.k8s.io/v1beta1"):
		var ic netv1.IngressClass // v1beta1 has the same fields
		if err := json.Unmarshal(js, &ic); err != nil {
			return fail(err)
		}
		o.meta = ic.ObjectMeta
		o.class = &ingressClassSpec{controller: ic.Spec.Controller, isDefault: ic.Annotations[netv1.AnnotationIsDefaultIngressClass] == "true"}
	default:
		return nil, nil
	}
	if node != nil {
		o.line = node.Line
		if ann := mappingValue(mappingValue(node, "metadata"), "annotations"); ann != nil {
			for i := 0; i+1 < len(ann.Content); i += 2 {
				o.annLines[ann.Content[i].Value] = ann.Content[i].Line
			}
		}
	}
	return o, nil
}

// add records a path and the Service it routes to.
func (s *ingressSpec) add(path, service string) {
	if path != "" && !slices.Contains(s.paths, path) {
		s.paths = append(s.paths, path)
	}
	if service != "" && !slices.Contains(s.services, service) {
		s.services = append(s.services, service)
	}
}

// mappingValue returns the value of key in a YAML mapping node, or nil.
func mappingValue(n *yamlv3.Node, key string) *yamlv3.Node {
	if n == nil || n.Kind != yamlv3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// cleanYAMLError drops the library's prefixes from a YAML error.
func cleanYAMLError(err error) error {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "yaml: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return fmt.Errorf("%s", msg)
}
