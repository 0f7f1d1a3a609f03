package conformance

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// suiteNamespacePrefix is the prefix of the namespaces the suite creates
// its backends in.
const suiteNamespacePrefix = "gateway-conformance-"

// nodeName is the node the pods run on, as far as the API server knows.
const nodeName = "conformance-node"

// endpointSliceManager is the managed-by label of the EndpointSlices the
// pod runner writes.
const endpointSliceManager = "conformance.tollgate-proxy.io"

// podRunner plays the part of the cluster's controllers and kubelets for
// the suite's backends, which the API server alone only stores: for every
// Deployment in a namespace of the suite it creates the Pods, marks them
// Running and Ready at an address of podNet and serves them there with an
// echo backend of its own; for every Service with a selector it writes the
// EndpointSlice of the ready Pods it selects.
type podRunner struct {
	t      *testing.T
	client kubernetes.Interface

	mu     sync.Mutex
	nextIP uint32
	pods   map[string]*runningPod // by namespace/name
	err    error                  // the last error of a pass, for the report
}

type runningPod struct {
	ip   net.IP
	echo *echoServer
}

// startPodRunner runs the pod runner until the test ends.
func startPodRunner(t *testing.T, client kubernetes.Interface) *podRunner {
	r := &podRunner{t: t, client: client, nextIP: binary.BigEndian.Uint32(podIPBase.To4()), pods: map[string]*runningPod{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := r.pass(ctx); err != nil && ctx.Err() == nil {
				r.mu.Lock()
				if r.err == nil || r.err.Error() != err.Error() {
					t.Logf("pod runner: %v", err)
				}
				r.err = err
				r.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.pods {
			p.echo.close()
		}
	})
	return r
}

// pass brings the suite's namespaces' Pods and EndpointSlices in line with
// their Deployments and Services.
func (r *podRunner) pass(ctx context.Context) error {
	nss, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss.Items {
		if !strings.HasPrefix(ns.Name, suiteNamespacePrefix) || ns.DeletionTimestamp != nil {
			continue
		}
		if err := r.deployments(ctx, ns.Name); err != nil {
			errs = append(errs, err)
		}
		if err := r.services(ctx, ns.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

// deployments makes each Deployment's Pods: "NAME-pod-I" for I below its
// replicas, running and ready.
func (r *podRunner) deployments(ctx context.Context, ns string) error {
	deps, err := r.client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list deployments of %s: %w", ns, err)
	}
	for _, d := range deps.Items {
		replicas := 1
		if d.Spec.Replicas != nil {
			replicas = int(*d.Spec.Replicas)
		}
		for i := range replicas {
			if err := r.ensurePod(ctx, &d, fmt.Sprintf("%s-pod-%d", d.Name, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *podRunner) ensurePod(ctx context.Context, d *appsv1.Deployment, name string) error {
	key := d.Namespace + "/" + name
	r.mu.Lock()
	p := r.pods[key]
	r.mu.Unlock()
	pods := r.client.CoreV1().Pods(d.Namespace)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		pod = &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		}
		// As if scheduled: the suite copies the node's name into the
		// EndpointSlices it writes itself, where it may not be empty.
		pod.Spec.NodeName = nodeName
		pod, err = pods.Create(ctx, pod, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("pod %s: %w", key, err)
	}
	if p == nil {
		ip := r.allocate()
		mustBeLocal(r.t, ip.String())
		echo, err := startEcho(ip, d.Namespace, name)
		if err != nil {
			return fmt.Errorf("echo backend of pod %s at %s: %w", key, ip, err)
		}
		p = &runningPod{ip: ip, echo: echo}
		r.mu.Lock()
		r.pods[key] = p
		r.mu.Unlock()
	}
	if pod.Status.PodIP == p.ip.String() && podReady(pod) {
		return nil
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    gatewayIP.String(),
		PodIP:     p.ip.String(),
		PodIPs:    []corev1.PodIP{{IP: p.ip.String()}},
		StartTime: &now,
	}
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("status of pod %s: %w", key, err)
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

// allocate returns the next pod address.
func (r *podRunner) allocate() net.IP {
	r.mu.Lock()
	defer r.mu.Unlock()
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, r.nextIP)
	r.nextIP++
	return ip
}

// services writes, for each Service with a selector, the EndpointSlice
// "NAME-pods" of the ready Pods it selects.
func (r *podRunner) services(ctx context.Context, ns string) error {
	svcs, err := r.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list services of %s: %w", ns, err)
	}
	pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", ns, err)
	}
	for _, svc := range svcs.Items {
		if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		want := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name:      svc.Name + "-pods",
				Namespace: ns,
				Labels: map[string]string{
					discoveryv1.LabelServiceName: svc.Name,
					discoveryv1.LabelManagedBy:   endpointSliceManager,
				},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{},
		}
		var selected []corev1.Pod
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) && p.Status.PodIP != "" && sel.Matches(labels.Set(p.Labels)) {
				selected = append(selected, p)
			}
		}
		slices.SortFunc(selected, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
		for _, p := range selected {
			want.Endpoints = append(want.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{p.Status.PodIP},
				Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)},
				NodeName:   new(p.Spec.NodeName),
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.Name, UID: p.UID},
			})
		}
		for _, sp := range svc.Spec.Ports {
			port := targetPort(sp, selected)
			want.Ports = append(want.Ports, discoveryv1.EndpointPort{
				Name: new(sp.Name), Protocol: new(sp.Protocol), Port: new(port), AppProtocol: sp.AppProtocol,
			})
		}
		epSlices := r.client.DiscoveryV1().EndpointSlices(ns)
		have, err := epSlices.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := epSlices.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create EndpointSlice %s/%s: %w", ns, want.Name, err)
			}
		case err != nil:
			return fmt.Errorf("EndpointSlice %s/%s: %w", ns, want.Name, err)
		case !equality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) || !equality.Semantic.DeepEqual(have.Ports, want.Ports):
			have.Endpoints, have.Ports = want.Endpoints, want.Ports
			if _, err := epSlices.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update EndpointSlice %s/%s: %w", ns, want.Name, err)
			}
		}
	}
	return nil
}

// targetPort is the port the pods serve a Service port on: its targetPort
// as a number, or looked up by name among the pods' container ports, or
// the port itself.
func targetPort(sp corev1.ServicePort, pods []corev1.Pod) int32 {
	switch {
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
		return sp.TargetPort.IntVal
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, p := range pods {
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == sp.TargetPort.StrVal {
						return cp.ContainerPort
					}
				}
			}
		}
	}
	return sp.Port
}
