package kubernetes

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/router"
)

// Scale of BenchmarkIngresses: 1,000 Ingresses in 50 namespaces, each to
// its own Service of 5 endpoints (5,000 in all).
const (
	scaleNamespaces = 50
	scalePerNS      = 20
	scaleEndpoints  = 5
)

// countingSink applies through config.Sources and counts the rebuilds.
type countingSink struct {
	*config.Sources
	n atomic.Int64
}

func (s *countingSink) SetProvided(p *config.Provided) ([]config.Refusal, error) {
	r, err := s.Sources.SetProvided(p)
	s.n.Add(1)
	return r, err
}

// BenchmarkIngresses measures the provider against a real API server
// holding 1,000 Ingresses: the time from start to the first
// configuration in force (a real router applies it), and the CPU of the
// whole process for one rebuild after one endpoint change (watch event,
// translation, merge, router build). bench/kubernetes.sh runs it.
func BenchmarkIngresses(b *testing.B) {
	kube := testserver.StartKube(b)
	admin := kube.Client(b)
	start := time.Now()
	populate(b, admin)
	b.Logf("created %d Ingresses, Services and EndpointSlices (%d endpoints) in %s",
		scaleNamespaces*scalePerNS, scaleNamespaces*scalePerNS*scaleEndpoints, time.Since(start).Round(time.Millisecond))
	settings := &config.KubernetesIngress{Endpoint: kube.URL, TokenFile: kube.AdminTokenFile(), CAFile: kube.CAFile}
	base := &config.Config{EntryPoints: map[string]*config.EntryPoint{
		"web": {Address: "127.0.0.1:0"}, "websecure": {Address: "127.0.0.1:0", HTTP: &config.EntryPointHTTP{TLS: &config.EntryPointTLS{}}},
	}}
	newProvider := func(b *testing.B) (*Provider, *countingSink, *router.Router) {
		rt := router.New(router.Config{})
		b.Cleanup(rt.Close)
		sink := &countingSink{Sources: config.NewSources(base, rt.Apply)}
		p, err := New(Config{Settings: settings, Sink: sink, Base: base, CheckPair: func(kp config.KeyPair) error {
			_, err := router.ParseKeyPair(kp)
			return err
		}})
		if err != nil {
			b.Fatal(err)
		}
		return p, sink, rt
	}
	run := func(b *testing.B, p *Provider) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("start", func(b *testing.B) {
		for b.Loop() {
			p, sink, _ := newProvider(b)
			stop := run(b, p)
			<-p.Ready()
			stop()
			if got := len(sink.Current().HTTP.Routers); got != scaleNamespaces*scalePerNS {
				b.Fatalf("%d routers, want %d", got, scaleNamespaces*scalePerNS)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms-to-ready/op")
		b.ReportMetric(0, "ns/op")
		rss, heap := memory()
		b.ReportMetric(rss, "rss-MiB")
		b.ReportMetric(heap, "heap-MiB")
	})

	b.Run("endpoint-change", func(b *testing.B) {
		p, sink, _ := newProvider(b)
		stop := run(b, p)
		defer stop()
		<-p.Ready()
		ctx := context.Background()
		slices := admin.DiscoveryV1().EndpointSlices("scale-00")
		es, err := slices.Get(ctx, "svc-00-1", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var cpu time.Duration
		i := 0
		for b.Loop() {
			i++
			es.Endpoints[0].Conditions.Ready = ptr(i%2 == 0)
			before := sink.n.Load()
			c0 := processCPU()
			if es, err = slices.Update(ctx, es, metav1.UpdateOptions{}); err != nil {
				b.Fatal(err)
			}
			for sink.n.Load() == before {
				time.Sleep(time.Millisecond)
			}
			cpu += processCPU() - c0
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		rss, heap := memory()
		b.ReportMetric(rss, "rss-MiB")
		b.ReportMetric(heap, "heap-MiB")
	})
}

// populate creates the objects of BenchmarkIngresses.
func populate(b *testing.B, c kubernetes.Interface) {
	ctx := context.Background()
	for n := range scaleNamespaces {
		ns := fmt.Sprintf("scale-%02d", n)
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.NetworkingV1().IngressClasses().Get(ctx, "tollgate", metav1.GetOptions{}); err != nil {
			cl := &netv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "tollgate"}, Spec: netv1.IngressClassSpec{Controller: config.IngressController}}
			if _, err := c.NetworkingV1().IngressClasses().Create(ctx, cl, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		for i := range scalePerNS {
			svc := fmt.Sprintf("svc-%02d", i)
			if _, err := c.CoreV1().Services(ns).Create(ctx, service(ns, svc, corev1.ServicePort{Name: "http", Port: 80}), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			var eps []discoveryv1.Endpoint
			for e := range scaleEndpoints {
				eps = append(eps, endpoint(fmt.Sprintf("10.%d.%d.%d", 100+n, i, e+1), true))
			}
			es := slice(ns, svc, "http", 8080, eps...)
			es.Name = svc + "-1"
			if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, es, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			ing := ingress(ns, fmt.Sprintf("ing-%02d", i), func(ing *netv1.Ingress) {
				ing.CreationTimestamp = metav1.Time{}
				ing.Spec.Rules[0].Host = fmt.Sprintf("%s.%s.example.com", svc, ns)
				ing.Spec.Rules[0].HTTP.Paths[0].Backend = backend(svc, 0, "http")
			})
			if _, err := c.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// processCPU is the CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory returns the process's resident memory and Go heap in use, MiB.
func memory() (rss, heap float64) {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			rss = kb / 1024
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rss, float64(ms.HeapInuse) / (1 << 20)
}
