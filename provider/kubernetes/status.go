package kubernetes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes/nginx"
)

// Leadership is the cluster's leader election as the provider needs it:
// only the leader writes Ingress status and Events. cmd/tollgate adapts
// the leader package's elector to it.
type Leadership interface {
	// Await blocks until this replica leads and returns the term, or
	// returns ctx's error.
	Await(ctx context.Context) (Fence, error)
}

// Fence is one term of leadership.
type Fence interface {
	// Done is closed when the term ends.
	Done() <-chan struct{}
	// Check returns nil while the term holds, established by a write to
	// the store fenced by the term. A status write conditioned on a
	// resourceVersion read before a nil Check cannot overwrite a later
	// leader's: that leader's term began after this one ended, so either
	// its write came after the read (and the resourceVersion no longer
	// matches) or before Check (which then fails).
	Check(ctx context.Context) error
}

// RunLeader writes status.loadBalancer of the served Ingresses and the
// Events of their problems while this replica leads, until ctx is done;
// then it returns nil. Without an ingressEndpoint it writes Events only.
func (p *Provider) RunLeader(ctx context.Context, l Leadership) error {
	return Terms(ctx, p.ready, l, p.lead)
}

// lead does the leader's work for one term.
func (p *Provider) lead(ctx context.Context, term Fence) {
	recorder, stop := EventRecorder(ctx, p.client)
	defer stop()
	p.log.Info("writing Ingress status and events", "leader", true)
	sent := map[objectRef][]string{} // Events sent this term
	bo := retry.Backoff{What: "Ingress status write", Log: p.log}
	changed := p.subscribe()
	defer p.unsubscribe(changed)
	for {
		p.events(recorder, sent)
		wait := time.Duration(0)
		if err := p.writeStatus(ctx, term); err != nil {
			if ctx.Err() != nil {
				return
			}
			bo.Failed(err)
			wait = bo.Next()
		} else {
			bo.Succeeded()
		}
		var retryC <-chan time.Time
		if wait > 0 {
			retryC = time.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retryC:
		}
	}
}

// events records an Event for each problem not yet sent this term.
func (p *Provider) events(recorder record.EventRecorder, sent map[objectRef][]string) {
	p.mu.Lock()
	problems := p.reported
	uids := p.uids
	p.mu.Unlock()
	for ref, msgs := range problems {
		for _, m := range msgs {
			if slices.Contains(sent[ref], m) {
				continue
			}
			sent[ref] = append(sent[ref], m)
			obj := &corev1.ObjectReference{Kind: ref.kind, Namespace: ref.namespace, Name: ref.name, UID: uids[ref]}
			switch ref.kind {
			case "Ingress":
				obj.APIVersion = "networking.k8s.io/v1"
			default:
				obj.APIVersion = "v1"
			}
			recorder.Event(obj, corev1.EventTypeWarning, reasonOf(m), m)
		}
	}
	for ref := range sent {
		if _, still := problems[ref]; !still {
			delete(sent, ref) // fixed: a new problem later is sent again
		}
	}
}

// reasonOf gives an Event its reason from the problem's text.
func reasonOf(msg string) string {
	switch {
	case strings.HasPrefix(msg, "not served"), strings.HasSuffix(msg, "the Ingress is not served"):
		return "Refused"
	case strings.HasPrefix(msg, "annotation "+nginx.Prefix):
		return "NginxAnnotation"
	case strings.Contains(msg, "secret"):
		return "TLSSecret"
	case strings.Contains(msg, "service") || strings.Contains(msg, "endpoints"):
		return "Backend"
	default:
		return "Invalid"
	}
}

// writeStatus sets status.loadBalancer of every served Ingress whose
// status differs from the published address.
func (p *Provider) writeStatus(ctx context.Context, term Fence) error {
	e := p.cfg.Settings.IngressEndpoint
	if e == nil {
		return nil
	}
	want, err := p.published(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	served := p.served
	p.mu.Unlock()
	var stale []*netv1.Ingress
	for _, ing := range served {
		if !equalLB(ing.Status.LoadBalancer.Ingress, want) {
			stale = append(stale, ing)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	// Every resourceVersion below was read (by the informer) before the
	// fence is checked: see Fence.Check.
	if err := term.Check(ctx); err != nil {
		return fmt.Errorf("leadership: %w", err)
	}
	var errs []error
	for _, ing := range stale {
		up := ing.DeepCopy()
		up.Status.LoadBalancer.Ingress = want
		_, err := p.client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: cmp.Or(p.cfg.FieldManager, "tollgate")})
		switch {
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			// Changed or gone since the informer saw it: the next round
			// reads it again.
			p.poke()
		case err != nil:
			errs = append(errs, fmt.Errorf("ingress %s/%s: %w", ing.Namespace, ing.Name, err))
		}
	}
	return errors.Join(errs...)
}

// published returns the address to publish.
func (p *Provider) published(ctx context.Context) ([]netv1.IngressLoadBalancerIngress, error) {
	return PublishedAddresses(ctx, p.client, p.cfg.Settings.IngressEndpoint)
}

// PublishedAddresses returns the addresses e describes: its fixed ones,
// or those of its Service's load balancer (else its external IPs).
func PublishedAddresses(ctx context.Context, client kubernetes.Interface, e *config.IngressEndpoint) ([]netv1.IngressLoadBalancerIngress, error) {
	if e.PublishedService == "" {
		return []netv1.IngressLoadBalancerIngress{{IP: e.IP, Hostname: e.Hostname}}, nil
	}
	ns, name, _ := strings.Cut(e.PublishedService, "/")
	svc, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("published service %s: %w", e.PublishedService, err)
	}
	var out []netv1.IngressLoadBalancerIngress
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		in := netv1.IngressLoadBalancerIngress{IP: lb.IP, Hostname: lb.Hostname}
		for _, port := range lb.Ports {
			in.Ports = append(in.Ports, netv1.IngressPortStatus{Port: port.Port, Protocol: port.Protocol, Error: port.Error})
		}
		out = append(out, in)
	}
	if len(out) == 0 {
		// A Service of type ClusterIP or NodePort has no load balancer
		// status; its external IPs are what clients use.
		for _, ip := range svc.Spec.ExternalIPs {
			out = append(out, netv1.IngressLoadBalancerIngress{IP: ip})
		}
	}
	return out, nil
}

func equalLB(a, b []netv1.IngressLoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y netv1.IngressLoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname && slices.EqualFunc(x.Ports, y.Ports, func(a, b netv1.IngressPortStatus) bool {
			return a.Port == b.Port && a.Protocol == b.Protocol && ptrOr(a.Error, "") == ptrOr(b.Error, "")
		})
	})
}

// StatusTermKey is the key, under the prefix, that the leader writes
// fenced by its term before each round of status writes.
const StatusTermKey = "kubernetes/status-term"

// ElectorLeadership is the Leadership of an elector whose terms fence
// their status writes by writing key (prefix + "/" + StatusTermKey).
func ElectorLeadership(e *leader.Elector, key string) Leadership {
	return electorLeadership{e: e, key: key}
}

type electorLeadership struct {
	e   *leader.Elector
	key string
}

func (l electorLeadership) Await(ctx context.Context) (Fence, error) {
	t, err := l.e.Await(ctx)
	if err != nil {
		return nil, err
	}
	return termFence{t: t, key: l.key}, nil
}

type termFence struct {
	t   *leader.Term
	key string
}

func (f termFence) Done() <-chan struct{} { return f.t.Done() }

func (f termFence) Check(ctx context.Context) error {
	_, err := f.t.Apply(ctx, kvstore.PutOp(f.key, []byte(strconv.FormatInt(f.t.Token(), 10))))
	return err
}
