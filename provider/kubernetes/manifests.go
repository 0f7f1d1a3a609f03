package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Manifests are the objects of Kubernetes manifests that the Ingress
// provider reads.
type Manifests struct {
	Ingresses      []*netv1.Ingress
	IngressClasses []*netv1.IngressClass
	// Secrets are kept for auth-secret (nginx annotations).
	Secrets []*corev1.Secret
	// Other are the documents of other kinds, as read.
	Other [][]byte
}

// typeMeta is what tells a document's kind.
type typeMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

// Read adds the objects of a YAML or JSON stream (several
// documents, kubectl's List) to m; name says where they come from in
// errors. Ingresses of networking.k8s.io/v1 only.
func (m *Manifests) Read(name string, r io.Reader) error {
	d := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: document %d: %w", name, n, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		if err := m.add(raw); err != nil {
			return fmt.Errorf("%s: document %d: %w", name, n, err)
		}
	}
}

func (m *Manifests) add(raw []byte) error {
	var tm typeMeta
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return err
	}
	var err error
	switch {
	case tm.Kind == "List" || (len(tm.Items) > 0 && len(tm.Kind) > 4 && tm.Kind[len(tm.Kind)-4:] == "List"):
		for _, it := range tm.Items {
			if err := m.add(it); err != nil {
				return err
			}
		}
	case tm.Kind == "Ingress" && tm.APIVersion == "networking.k8s.io/v1":
		ing := &netv1.Ingress{}
		if err = yaml.UnmarshalStrict(raw, ing); err == nil {
			m.Ingresses = append(m.Ingresses, ing)
		}
	case tm.Kind == "Ingress":
		return fmt.Errorf("an Ingress of %s: only networking.k8s.io/v1 is read; convert it (kubectl get -o yaml reads it as v1)", tm.APIVersion)
	case tm.Kind == "IngressClass":
		c := &netv1.IngressClass{}
		if err = yaml.Unmarshal(raw, c); err == nil {
			m.IngressClasses = append(m.IngressClasses, c)
		}
	case tm.Kind == "Secret":
		s := &corev1.Secret{}
		if err = yaml.Unmarshal(raw, s); err == nil {
			for k, v := range s.StringData {
				if s.Data == nil {
					s.Data = map[string][]byte{}
				}
				s.Data[k] = []byte(v)
			}
			m.Secrets = append(m.Secrets, s)
		}
	default:
		m.Other = append(m.Other, raw)
	}
	return err
}
