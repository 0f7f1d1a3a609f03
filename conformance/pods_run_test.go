package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// TestPodRunner: a Deployment's pods become Ready at addresses of podNet,
// the Service selecting them gets an EndpointSlice of those addresses
// with the target port, and each address answers as the suite's echo
// backend of its pod.
func TestPodRunner(t *testing.T) {
	needNetns(t)
	kube := testserver.StartKube(t)
	client := kube.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := suiteNamespacePrefix + "test"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "echo"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: "echo"}}},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(3000)},
		}},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	startPodRunner(t, client)

	var slice *discoveryv1.EndpointSlice
	for slice == nil || len(slice.Endpoints) < 2 {
		if ctx.Err() != nil {
			t.Fatalf("no EndpointSlice with two endpoints for Service %s/echo: %v", ns, slice)
		}
		time.Sleep(200 * time.Millisecond)
		slice, _ = client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "echo-pods", metav1.GetOptions{})
	}
	if len(slice.Ports) != 1 || *slice.Ports[0].Port != 3000 || *slice.Ports[0].Name != "http" {
		t.Errorf("ports %v, want http 3000", slice.Ports)
	}
	if slice.Labels[discoveryv1.LabelServiceName] != "echo" {
		t.Errorf("labels %v, want the service name", slice.Labels)
	}
	pods := map[string]bool{}
	for _, ep := range slice.Endpoints {
		addr := ep.Addresses[0]
		mustBeLocal(t, addr)
		resp, err := http.Get("http://" + addr + ":3000/some/path?x=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a echoAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s: %v: %s", addr, err, b)
		}
		if a.Namespace != ns || a.Pod != ep.TargetRef.Name || a.Path != "/some/path?x=1" {
			t.Errorf("%s answered %+v, want namespace %s, pod %s", addr, a, ns, ep.TargetRef.Name)
		}
		pods[a.Pod] = true
		p, err := client.CoreV1().Pods(ns).Get(ctx, a.Pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ep.NodeName == nil || *ep.NodeName != nodeName || p.Spec.NodeName != nodeName {
			t.Errorf("pod %s: node %q, endpoint's %v, want %s", p.Name, p.Spec.NodeName, ep.NodeName, nodeName)
		}
		if !podReady(p) || p.Status.PodIP != addr {
			t.Errorf("pod %s: ready %v at %s, want ready at %s", p.Name, podReady(p), p.Status.PodIP, addr)
		}
	}
	if len(pods) != 2 {
		t.Errorf("answered by %v, want two pods", pods)
	}
}
