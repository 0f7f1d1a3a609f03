package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
)

// Config configures a Provider.
type Config struct {
	// Settings are the [providers.kubernetesGateway] settings. Required.
	Settings *config.KubernetesGateway
	// REST connects to the API server. Nil means from Settings: its
	// endpoint, token and CA files, or the pod's in-cluster configuration.
	REST *rest.Config
	// Sink receives every new configuration. Required.
	Sink kubernetes.Sink
	// Base is the configuration the replica started with: its entry
	// points map the listeners' ports (Settings.ListenerEntryPoints).
	// Required.
	Base *config.Config
	// CheckPair is the router's check of a certificate; a Secret it
	// refuses leaves its listener unresolved. Nil accepts all.
	CheckPair func(config.KeyPair) error
	// FieldManager names this replica in the managedFields of the status
	// it writes. Empty means "tollgate".
	FieldManager string
	// Registerer receives the provider's metrics. Nil registers none.
	Registerer prometheus.Registerer
	// Logger receives problems and rebuilds. Nil discards.
	Logger *slog.Logger
}

// Provider follows the Gateway API objects of the API server and feeds
// Sink; RunLeader writes their status.
type Provider struct {
	cfg      Config
	log      *slog.Logger
	client   k8s.Interface
	gateways gatewayclient.Interface
	settings Settings
	throttle time.Duration
	metrics  *metrics

	kick  chan struct{}
	ready chan struct{}

	mu       sync.Mutex
	listers  *listers
	objects  *Objects            // the last translation's input
	desired  *Result             // the last translation, with the sink's refusals
	reported map[string][]string // problems and notes logged, by object ("Kind ns/name")
	subs     map[chan struct{}]bool
	applied  *config.Provided
	refused  []config.Refusal
	lastErr  string
}

// New checks cfg and connects the clients; Run starts following.
func New(cfg Config) (*Provider, error) {
	if cfg.Settings == nil || cfg.Sink == nil || cfg.Base == nil {
		return nil, errors.New("kubernetes gateway provider: Settings, Sink and Base are required")
	}
	rc, client, err := kubernetes.NewClient(cfg.Settings.API(), cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("kubernetes gateway provider: %w", err)
	}
	gw, err := gatewayclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes gateway provider: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	throttle := cfg.Settings.ThrottleDuration.Std()
	if throttle == 0 {
		throttle = 50 * time.Millisecond
	}
	return &Provider{
		cfg:      cfg,
		log:      log.With("provider", ProviderName),
		client:   client,
		gateways: gw,
		settings: Settings{
			ControllerName: gatewayv1.GatewayController(cfg.Settings.ControllerName),
			EntryPoints:    cfg.Settings.ListenerEntryPoints(cfg.Base.EntryPoints),
			ACME:           cfg.Base.ACME != nil,
			ACMEWildcards:  cfg.Base.ACME != nil && cfg.Base.ACME.DNSChallenge != nil,
			CheckPair:      cfg.CheckPair,
		},
		throttle: throttle,
		metrics:  newMetrics(cfg.Registerer),
		kick:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
		reported: map[string][]string{},
	}, nil
}

// Ready is closed once the first configuration from the API server is in
// force.
func (p *Provider) Ready() <-chan struct{} { return p.ready }

// listers read the informers' caches.
type listers struct {
	classes, namespaces                  cache.Indexer
	gateways, routes, grpcRoutes, grants []cache.Indexer
	services, endpointSlices, secrets    []cache.Indexer
}

// Run follows the API server until ctx is done, then returns nil. It
// returns an error only when the informers cannot start.
func (p *Provider) Run(ctx context.Context) error {
	namespaces := p.cfg.Settings.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.poke() },
		UpdateFunc: func(any, any) { p.poke() },
		DeleteFunc: func(any) { p.poke() },
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var factories []kubernetes.Factory
	add := func(what string, inf cache.SharedIndexInformer) (cache.Indexer, error) {
		return kubernetes.Follow(p.log, what, inf, handler)
	}
	ls := &listers{}
	type step struct {
		what string
		inf  cache.SharedIndexInformer
		to   *[]cache.Indexer
	}
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(ns))
		fs := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()
			}))
		fg := gatewayinformers.NewSharedInformerFactoryWithOptions(p.gateways, 0, gatewayinformers.WithNamespace(ns))
		for _, s := range []step{
			{"gateways", fg.Gateway().V1().Gateways().Informer(), &ls.gateways},
			{"httproutes", fg.Gateway().V1().HTTPRoutes().Informer(), &ls.routes},
			{"grpcroutes", fg.Gateway().V1().GRPCRoutes().Informer(), &ls.grpcRoutes},
			{"referencegrants", fg.Gateway().V1beta1().ReferenceGrants().Informer(), &ls.grants},
			{"services", f.Core().V1().Services().Informer(), &ls.services},
			{"endpointslices", f.Discovery().V1().EndpointSlices().Informer(), &ls.endpointSlices},
			{"secrets", fs.Core().V1().Secrets().Informer(), &ls.secrets},
		} {
			ix, err := add(s.what, s.inf)
			if err != nil {
				return err
			}
			*s.to = append(*s.to, ix)
		}
		factories = append(factories, f, fs, fg)
	}
	fc := informers.NewSharedInformerFactory(p.client, 0)
	fgc := gatewayinformers.NewSharedInformerFactory(p.gateways, 0)
	var err error
	if ls.classes, err = add("gatewayclasses", fgc.Gateway().V1().GatewayClasses().Informer()); err != nil {
		return err
	}
	if ls.namespaces, err = add("namespaces", fc.Core().V1().Namespaces().Informer()); err != nil {
		return err
	}
	factories = append(factories, fc, fgc)
	stop := kubernetes.Sync(ctx, p.log, factories, "still waiting for the first complete listing from the API server (are the Gateway API CRDs installed?); not ready until then", "endpoint", p.cfg.Settings.Endpoint)
	defer func() {
		cancel()
		stop()
	}()
	if ctx.Err() != nil {
		return nil
	}
	p.mu.Lock()
	p.listers = ls
	p.mu.Unlock()
	p.log.Info("following the API server", "namespaces", strings.Join(p.cfg.Settings.Namespaces, ","), "controller", p.controller())
	p.poke()
	kubernetes.Rebuilds(ctx, p.kick, p.throttle, p.rebuild, p.ready)
	return nil
}

func (p *Provider) controller() gatewayv1.GatewayController {
	if p.settings.ControllerName == "" {
		return ControllerName
	}
	return p.settings.ControllerName
}

// poke asks for a rebuild.
func (p *Provider) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Refused is told the parts a merge refused when something other than
// the provider changed: it rebuilds, so that the statuses say so.
func (p *Provider) Refused(refused []config.Refusal) {
	p.mu.Lock()
	p.refused = refused
	p.mu.Unlock()
	p.poke()
}

// rebuild translates what the caches hold and hands it to the sink,
// unless it is what the sink has already; false means the sink refused
// it whole.
func (p *Provider) rebuild() bool {
	start := time.Now()
	p.mu.Lock()
	ls := p.listers
	p.mu.Unlock()
	objs := snapshot(ls)
	res := Translate(p.settings, objs)
	p.mu.Lock()
	same := p.applied != nil && reflect.DeepEqual(p.applied, res.Provided)
	refused := p.refused
	p.mu.Unlock()
	if !same {
		var err error
		refused, err = p.cfg.Sink.SetProvided(res.Provided)
		p.metrics.rebuilds.Inc()
		p.metrics.rebuildSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			p.metrics.rejected.Inc()
			if msg := err.Error(); msg != p.lastErr {
				p.log.Error("the routes from the Gateway API objects were refused; the previous ones stay in force", "err", err)
				p.lastErr = msg
			}
			return false
		}
		p.lastErr = ""
	}
	refuse(res, refused)
	problems := problemsOf(res)
	p.mu.Lock()
	p.objects, p.desired = objs, res
	p.applied, p.refused = res.Provided, refused
	p.mu.Unlock()
	p.report(problems)
	p.mu.Lock()
	for c := range p.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	return true
}

// refuse makes the status of each HTTPRoute and GRPCRoute the sink
// refused say so.
func refuse(res *Result, refused []config.Refusal) {
	for _, r := range refused {
		if r.Provider != "" && r.Provider != ProviderName {
			continue
		}
		var st *gatewayv1.RouteStatus
		if nsName, ok := strings.CutPrefix(r.Owner, "httproute "); ok && res.HTTPRoutes[nsName] != nil {
			st = &res.HTTPRoutes[nsName].RouteStatus
		} else if nsName, ok := strings.CutPrefix(r.Owner, "grpcroute "); ok && res.GRPCRoutes[nsName] != nil {
			st = &res.GRPCRoutes[nsName].RouteStatus
		}
		if st == nil {
			continue
		}
		for i := range st.Parents {
			for j, c := range st.Parents[i].Conditions {
				if c.Type == string(gatewayv1.RouteConditionAccepted) {
					st.Parents[i].Conditions[j] = cond(c.Type, false, string(gatewayv1.RouteReasonUnsupportedValue), "not served: "+r.Err.Error(), c.ObservedGeneration)
				}
			}
		}
	}
}

// problemsOf gathers, by object, what an Event should tell: the notes,
// and each condition that is not as it should be.
func problemsOf(res *Result) map[string][]string {
	out := map[string][]string{}
	for nsName, msgs := range res.GatewayProblems {
		out["Gateway "+nsName] = append(out["Gateway "+nsName], msgs...)
	}
	route := func(kind, nsName string, notes []string, st *gatewayv1.RouteStatus) {
		key := kind + " " + nsName
		out[key] = append(out[key], notes...)
		if st == nil {
			return
		}
		for _, ps := range st.Parents {
			for _, c := range ps.Conditions {
				if c.Status != metav1.ConditionTrue && c.Message != "" && !slices.Contains(out[key], c.Message) {
					out[key] = append(out[key], c.Message)
				}
			}
		}
	}
	for nsName, notes := range res.Notes {
		route("HTTPRoute", nsName, notes, nil)
	}
	for nsName, st := range res.HTTPRoutes {
		route("HTTPRoute", nsName, nil, &st.RouteStatus)
	}
	for nsName, notes := range res.GRPCNotes {
		route("GRPCRoute", nsName, notes, nil)
	}
	for nsName, st := range res.GRPCRoutes {
		route("GRPCRoute", nsName, nil, &st.RouteStatus)
	}
	for nsName, st := range res.Gateways {
		for _, l := range st.Listeners {
			for _, c := range l.Conditions {
				if c.Type == string(gatewayv1.ListenerConditionProgrammed) && c.Status != metav1.ConditionTrue && c.Message != "" {
					out["Gateway "+nsName] = append(out["Gateway "+nsName], fmt.Sprintf("listener %s: %s", l.Name, c.Message))
				}
			}
		}
	}
	for k := range out {
		slices.Sort(out[k])
		out[k] = slices.Compact(out[k])
	}
	return out
}

// report logs each problem once, when it appears.
func (p *Provider) report(problems map[string][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for obj, msgs := range problems {
		n += len(msgs)
		for _, m := range msgs {
			if !slices.Contains(p.reported[obj], m) {
				p.log.Warn("gateway API object has a problem", "object", obj, "problem", m)
			}
		}
	}
	for obj := range p.reported {
		if _, still := problems[obj]; !still {
			p.log.Info("gateway API object has no problem left", "object", obj)
		}
	}
	p.reported = problems
	p.metrics.problems.Set(float64(n))
}

// subscribe returns a channel told of every rebuild.
func (p *Provider) subscribe() chan struct{} {
	c := make(chan struct{}, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subs == nil {
		p.subs = map[chan struct{}]bool{}
	}
	p.subs[c] = true
	return c
}

func (p *Provider) unsubscribe(c chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.subs, c)
}

// snapshot copies what the caches hold.
func snapshot(ls *listers) *Objects {
	o := &Objects{
		GatewayClasses:  listed[*gatewayv1.GatewayClass](ls.classes),
		Namespaces:      listed[*corev1.Namespace](ls.namespaces),
		Gateways:        listed[*gatewayv1.Gateway](ls.gateways...),
		HTTPRoutes:      listed[*gatewayv1.HTTPRoute](ls.routes...),
		GRPCRoutes:      listed[*gatewayv1.GRPCRoute](ls.grpcRoutes...),
		ReferenceGrants: listed[*gatewayv1beta1.ReferenceGrant](ls.grants...),
		Services:        listed[*corev1.Service](ls.services...),
		EndpointSlices:  listed[*discoveryv1.EndpointSlice](ls.endpointSlices...),
	}
	for _, s := range listed[*corev1.Secret](ls.secrets...) {
		if s.Type == corev1.SecretTypeTLS {
			o.Secrets = append(o.Secrets, s)
		}
	}
	return o
}

// listed returns the objects of type T the caches hold.
func listed[T any](ixs ...cache.Indexer) []T {
	var out []T
	for _, ix := range ixs {
		for _, v := range ix.List() {
			if t, ok := v.(T); ok {
				out = append(out, t)
			}
		}
	}
	return out
}

type metrics struct {
	rebuilds       prometheus.Counter
	rejected       prometheus.Counter
	rebuildSeconds prometheus.Histogram
	problems       prometheus.Gauge
	statusWrites   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_kubernetes_gateway_rebuilds_total",
			Help: "Rebuilds of the routes from the Gateway API objects."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_kubernetes_gateway_rebuilds_rejected_total",
			Help: "Rebuilds whose routes the router refused (the previous ones stayed in force)."}),
		rebuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tollgate_kubernetes_gateway_rebuild_seconds",
			Help: "Time to rebuild and apply the routes after a change.", Buckets: []float64{.001, .005, .02, .1, .5, 2}}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_kubernetes_gateway_object_problems",
			Help: "Problems and approximations found in the served Gateway API objects (each also logged, and an Event on the object)."}),
		statusWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_kubernetes_gateway_status_writes_total",
			Help: "Status writes of the leader, by kind and result (ok, conflict, error)."}, []string{"kind", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.rebuilds, m.rejected, m.rebuildSeconds, m.problems, m.statusWrites)
	}
	return m
}
