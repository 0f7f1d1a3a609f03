package kubernetes

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	kvbackend "github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/leader"
)

// unaware is a replica that lost the leadership without noticing (a
// paused process): its term's Done never closes for it, and it is never
// given another term.
type unaware struct{ Leadership }

func (u *unaware) Await(ctx context.Context) (Fence, error) {
	if u.Leadership == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f, err := u.Leadership.Await(ctx)
	u.Leadership = nil
	if err != nil {
		return nil, err
	}
	return stillLeading{f}, nil
}

type stillLeading struct{ Fence }

func (stillLeading) Done() <-chan struct{} { return nil }

// TestStaleLeaderStatusLoses: a replica that lost the leadership without
// noticing must not overwrite the status the next leader wrote: each
// replica publishes its own address here, so the Ingress shows whose
// write won.
func TestStaleLeaderStatusLoses(t *testing.T) {
	kube, admin := apiWithWeb(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := admin.NetworkingV1().Ingresses("apps").Create(ctx, webIngress("web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	st, err := kvbackend.Open(ctx, "etcd://"+testserver.Etcd(t).Addr, kvbackend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	elector := func(id string) (*leader.Elector, context.CancelFunc, chan error) {
		e, err := leader.New(leader.Config{Store: st, Key: "t/leader", Node: leader.Node{ID: id}, TTL: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ectx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ectx) }()
		return e, stop, done
	}
	replica := func(ip string, l Leadership) {
		runProvider(t, kube, "tollgate-"+ip, config.KubernetesIngress{IngressEndpoint: &config.IngressEndpoint{IP: ip}}, l)
	}
	status := func() string {
		ing, err := admin.NetworkingV1().Ingresses("apps").Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) == 0 {
			return ""
		}
		return ing.Status.LoadBalancer.Ingress[0].IP
	}
	waitStatus := func(want string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for status() != want {
			if time.Now().After(deadline) {
				t.Fatalf("status %q, want %q", status(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	ea, stopA, doneA := elector("a")
	replica("192.0.2.1", &unaware{Leadership: ElectorLeadership(ea, "t/"+StatusTermKey)})
	waitStatus("192.0.2.1")
	// a loses the leadership; b takes it and writes its address.
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	eb, stopB, doneB := elector("b")
	defer func() { stopB(); <-doneB }()
	replica("192.0.2.2", ElectorLeadership(eb, "t/"+StatusTermKey))
	waitStatus("192.0.2.2")
	// a still believes it leads and sees a status that is not its own:
	// it tries to write it again, on every change it sees.
	for i := range 5 {
		// The leader may write the status meanwhile: retry on a conflict.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ing, err := admin.NetworkingV1().Ingresses("apps").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			ing.Labels = map[string]string{"poke": string(rune('a' + i))}
			_, err = admin.NetworkingV1().Ingresses("apps").Update(ctx, ing, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if got := status(); got != "192.0.2.2" {
			t.Fatalf("the stale leader's status won: %q", got)
		}
	}
}
