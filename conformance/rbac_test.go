package conformance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// shippedRoleDir holds the manifests whose ClusterRole tollgate runs with.
const shippedRoleDir = "../deploy/kubernetes/base"

// serviceAccountToken creates the ServiceAccount tollgate/tollgate, binds
// it to the ClusterRole of deploy/kubernetes/base, and returns the path
// of a token for it: tollgate runs with exactly the rights the shipped
// manifests give it.
func serviceAccountToken(t *testing.T, kube *testserver.Kube) string {
	t.Helper()
	token := kube.ServiceAccountTokenFile(t, "tollgate", "tollgate")
	files, err := filepath.Glob(filepath.Join(shippedRoleDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", shippedRoleDir, err)
	}
	var role *rbacv1.ClusterRole
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for doc := range bytes.SplitSeq(b, []byte("\n---")) {
			var meta metav1.TypeMeta
			if yaml.Unmarshal(doc, &meta) != nil || meta.Kind != "ClusterRole" {
				continue
			}
			role = &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict(doc, role); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
	}
	if role == nil {
		t.Fatalf("no ClusterRole in %s", shippedRoleDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := kube.Client(t)
	role.Namespace = ""
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRole %s: %v", role.Name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tollgate-conformance"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "tollgate", Name: "tollgate"}},
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRoleBinding: %v", err)
	}
	return token
}
