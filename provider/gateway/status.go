package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
)

// StatusTermKey is the key, under the prefix, that the leader writes
// fenced by its term before each round of Gateway API status writes.
const StatusTermKey = "kubernetes/gateway-status-term"

// RunLeader writes the status of the served GatewayClasses, Gateways and
// HTTPRoutes, and the Events of their problems, while this replica leads,
// until ctx is done; then it returns nil.
func (p *Provider) RunLeader(ctx context.Context, l kubernetes.Leadership) error {
	return kubernetes.Terms(ctx, p.ready, l, p.lead)
}

// lead does the leader's work for one term.
func (p *Provider) lead(ctx context.Context, term kubernetes.Fence) {
	recorder, stop := kubernetes.EventRecorder(ctx, p.client)
	defer stop()
	p.log.Info("writing Gateway API status and events", "leader", true)
	sent := map[string][]string{}
	bo := retry.Backoff{What: "Gateway API status write", Log: p.log}
	changed := p.subscribe()
	defer p.unsubscribe(changed)
	for {
		p.events(recorder, sent)
		var retryC <-chan time.Time
		if err := p.writeStatus(ctx, term); err != nil {
			if ctx.Err() != nil {
				return
			}
			bo.Failed(err)
			retryC = time.After(bo.Next())
		} else {
			bo.Succeeded()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retryC:
		}
	}
}

// events records an Event for each problem or note not yet sent this
// term.
func (p *Provider) events(recorder record.EventRecorder, sent map[string][]string) {
	p.mu.Lock()
	problems, res, objs := p.reported, p.desired, p.objects
	p.mu.Unlock()
	if objs == nil {
		return
	}
	uids := map[string]types.UID{}
	for _, g := range objs.Gateways {
		uids["Gateway "+g.Namespace+"/"+g.Name] = g.UID
	}
	for _, r := range objs.HTTPRoutes {
		uids["HTTPRoute "+r.Namespace+"/"+r.Name] = r.UID
	}
	for _, r := range objs.GRPCRoutes {
		uids["GRPCRoute "+r.Namespace+"/"+r.Name] = r.UID
	}
	for _, s := range objs.Secrets {
		uids["Secret "+s.Namespace+"/"+s.Name] = s.UID
	}
	for obj, msgs := range problems {
		kind, nsName, _ := strings.Cut(obj, " ")
		ns, name, _ := strings.Cut(nsName, "/")
		ref := &corev1.ObjectReference{Kind: kind, Namespace: ns, Name: name, UID: uids[obj], APIVersion: gatewayv1.GroupVersion.String()}
		if kind == "Secret" {
			ref.APIVersion = "v1"
		}
		for _, m := range msgs {
			if slices.Contains(sent[obj], m) {
				continue
			}
			sent[obj] = append(sent[obj], m)
			switch {
			case kind == "HTTPRoute" && slices.Contains(res.Notes[nsName], m),
				kind == "GRPCRoute" && slices.Contains(res.GRPCNotes[nsName], m):
				recorder.Event(ref, corev1.EventTypeNormal, "Approximated", m)
			case strings.HasPrefix(m, "not served"):
				recorder.Event(ref, corev1.EventTypeWarning, "Refused", m)
			default:
				recorder.Event(ref, corev1.EventTypeWarning, "Invalid", m)
			}
		}
	}
	for obj := range sent {
		if _, still := problems[obj]; !still {
			delete(sent, obj)
		}
	}
}

// statusWrite is one status update the leader makes.
type statusWrite struct {
	kind, name string
	do         func(context.Context) error
}

// writeStatus writes every status that differs from the last
// translation's. Each write is conditioned on the resourceVersion the
// informer read, before the fence is checked: see kubernetes.Fence.
func (p *Provider) writeStatus(ctx context.Context, term kubernetes.Fence) error {
	p.mu.Lock()
	objs, res := p.objects, p.desired
	p.mu.Unlock()
	if objs == nil || res == nil {
		return nil
	}
	var addrs []gatewayv1.GatewayStatusAddress
	if e := p.cfg.Settings.StatusAddress; e != nil {
		lbs, err := kubernetes.PublishedAddresses(ctx, p.client, e)
		if err != nil {
			return err
		}
		for _, lb := range lbs {
			if lb.IP != "" {
				addrs = append(addrs, gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.IPAddressType), Value: lb.IP})
			}
			if lb.Hostname != "" {
				addrs = append(addrs, gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.HostnameAddressType), Value: lb.Hostname})
			}
		}
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	writes := p.classWrites(objs, res, now)
	writes = append(writes, p.gatewayWrites(objs, res, addrs, now)...)
	writes = append(writes, p.routeWrites(objs, res, now)...)
	if len(writes) == 0 {
		return nil
	}
	if err := term.Check(ctx); err != nil {
		return fmt.Errorf("leadership: %w", err)
	}
	var errs []error
	for _, w := range writes {
		err := w.do(ctx)
		switch {
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			// Changed or gone since the informer saw it: the next round
			// reads it again.
			p.metrics.statusWrites.WithLabelValues(w.kind, "conflict").Inc()
			p.poke()
		case err != nil:
			p.metrics.statusWrites.WithLabelValues(w.kind, "error").Inc()
			errs = append(errs, fmt.Errorf("%s %s: %w", w.kind, w.name, err))
		default:
			p.metrics.statusWrites.WithLabelValues(w.kind, "ok").Inc()
		}
	}
	return errors.Join(errs...)
}

func (p *Provider) update() metav1.UpdateOptions {
	return metav1.UpdateOptions{FieldManager: cmp.Or(p.cfg.FieldManager, "tollgate")}
}

func (p *Provider) classWrites(objs *Objects, res *Result, now metav1.Time) []statusWrite {
	var out []statusWrite
	for _, c := range objs.GatewayClasses {
		want, ok := res.GatewayClasses[c.Name]
		if !ok {
			continue
		}
		conds := mergeConditions(c.Status.Conditions, want, now)
		if equality.Semantic.DeepEqual(conds, c.Status.Conditions) {
			continue
		}
		up := c.DeepCopy()
		up.Status.Conditions = conds
		out = append(out, statusWrite{"GatewayClass", c.Name, func(ctx context.Context) error {
			_, err := p.gateways.GatewayV1().GatewayClasses().UpdateStatus(ctx, up, p.update())
			return err
		}})
	}
	return out
}

func (p *Provider) gatewayWrites(objs *Objects, res *Result, addrs []gatewayv1.GatewayStatusAddress, now metav1.Time) []statusWrite {
	var out []statusWrite
	for _, g := range objs.Gateways {
		desired, ok := res.Gateways[g.Namespace+"/"+g.Name]
		if !ok {
			continue
		}
		want := desired.DeepCopy()
		want.Addresses = addrs
		want.Conditions = mergeConditions(g.Status.Conditions, want.Conditions, now)
		for i := range want.Listeners {
			l := &want.Listeners[i]
			var old []metav1.Condition
			for _, ol := range g.Status.Listeners {
				if ol.Name == l.Name {
					old = ol.Conditions
				}
			}
			l.Conditions = mergeConditions(old, l.Conditions, now)
		}
		if equality.Semantic.DeepEqual(*want, g.Status) {
			continue
		}
		up := g.DeepCopy()
		up.Status = *want
		out = append(out, statusWrite{"Gateway", g.Namespace + "/" + g.Name, func(ctx context.Context) error {
			_, err := p.gateways.GatewayV1().Gateways(up.Namespace).UpdateStatus(ctx, up, p.update())
			return err
		}})
	}
	return out
}

// routeWrites sets the parents entries of this controller on HTTPRoutes
// and GRPCRoutes, keeping other controllers' entries, and removes ours
// from routes that no longer name a served Gateway.
func (p *Provider) routeWrites(objs *Objects, res *Result, now metav1.Time) []statusWrite {
	var out []statusWrite
	for _, r := range objs.HTTPRoutes {
		var desired *gatewayv1.RouteStatus
		if st := res.HTTPRoutes[r.Namespace+"/"+r.Name]; st != nil {
			desired = &st.RouteStatus
		}
		if parents, ok := p.routeParents(r.Status.Parents, desired, now); ok {
			up := r.DeepCopy()
			up.Status.Parents = parents
			out = append(out, statusWrite{"HTTPRoute", r.Namespace + "/" + r.Name, func(ctx context.Context) error {
				_, err := p.gateways.GatewayV1().HTTPRoutes(up.Namespace).UpdateStatus(ctx, up, p.update())
				return err
			}})
		}
	}
	for _, r := range objs.GRPCRoutes {
		var desired *gatewayv1.RouteStatus
		if st := res.GRPCRoutes[r.Namespace+"/"+r.Name]; st != nil {
			desired = &st.RouteStatus
		}
		if parents, ok := p.routeParents(r.Status.Parents, desired, now); ok {
			up := r.DeepCopy()
			up.Status.Parents = parents
			out = append(out, statusWrite{"GRPCRoute", r.Namespace + "/" + r.Name, func(ctx context.Context) error {
				_, err := p.gateways.GatewayV1().GRPCRoutes(up.Namespace).UpdateStatus(ctx, up, p.update())
				return err
			}})
		}
	}
	return out
}

// routeParents returns the parents entries a route's status should have,
// given those it has and this controller's desired ones (nil: none), and
// whether they differ.
func (p *Provider) routeParents(have []gatewayv1.RouteParentStatus, desired *gatewayv1.RouteStatus, now metav1.Time) ([]gatewayv1.RouteParentStatus, bool) {
	ours := p.controller()
	var parents []gatewayv1.RouteParentStatus
	had := false
	for _, ps := range have {
		if ps.ControllerName == ours {
			had = true
		} else {
			parents = append(parents, ps)
		}
	}
	if desired == nil && !had {
		return nil, false
	}
	if desired != nil {
		for _, ps := range desired.Parents {
			ps = *ps.DeepCopy()
			var old []metav1.Condition
			for _, ops := range have {
				if ops.ControllerName == ours && equality.Semantic.DeepEqual(ops.ParentRef, ps.ParentRef) {
					old = ops.Conditions
				}
			}
			ps.Conditions = mergeConditions(old, ps.Conditions, now)
			parents = append(parents, ps)
		}
	}
	if equality.Semantic.DeepEqual(parents, have) {
		return nil, false
	}
	return parents, true
}

// mergeConditions returns want with each condition's LastTransitionTime
// taken from the old condition of its type when the status is the same,
// and now when it changed or is new.
func mergeConditions(old, want []metav1.Condition, now metav1.Time) []metav1.Condition {
	out := slices.Clone(want)
	for i := range out {
		out[i].LastTransitionTime = now
		for _, o := range old {
			if o.Type == out[i].Type && o.Status == out[i].Status {
				out[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return out
}
