package kubernetes

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tollgate-proxy/tollgate/config"
)

// Sink receives what the provider makes: config.Sources implements it.
// SetProvided returns the parts it refused, and an error when the
// configuration could not be applied at all (the previous one stays).
type Sink interface {
	SetProvided(*config.Provided) ([]config.Refusal, error)
}

// Config configures a Provider.
type Config struct {
	// Settings are the [providers.kubernetesIngress] settings. Required.
	Settings *config.KubernetesIngress
	// REST connects to the API server. Nil means from Settings: its
	// endpoint, token and CA files, or the pod's in-cluster configuration.
	REST *rest.Config
	// Sink receives every new configuration. Required.
	Sink Sink
	// Base is the configuration the replica started with: its entry
	// points (changing them needs a restart) and its [acme] section, which
	// obtains the certificates of TLS hosts without a secret. Required.
	Base *config.Config
	// CheckPair is the router's check of a provided certificate; a
	// secret it refuses is reported and left out. Nil accepts all.
	CheckPair func(config.KeyPair) error
	// FieldManager names this replica in the managedFields of the status
	// it writes, so that an operator sees which replica wrote it. Empty
	// means "tollgate".
	FieldManager string
	// Registerer receives the provider's metrics. Nil registers none.
	Registerer prometheus.Registerer
	// Logger receives problems and rebuilds. Nil discards.
	Logger *slog.Logger
}

// Provider follows the API server and feeds Sink.
type Provider struct {
	cfg      Config
	log      *slog.Logger
	client   kubernetes.Interface
	tr       *translator
	throttle time.Duration
	metrics  *metrics

	kick  chan struct{}
	ready chan struct{}

	mu       sync.Mutex
	listers  *listers
	reported map[objectRef][]string // problems logged, by object
	uids     map[objectRef]types.UID
	served   []*netv1.Ingress
	subs     map[chan struct{}]bool // told of every rebuild
	applied  *config.Provided       // what the sink has
	refused  []config.Refusal       // the parts of applied it refused
	lastErr  string                 // the sink's last refusal of all, logged once
}

// RESTConfig returns the connection the settings describe, after
// reading the token and CA files they name (tollgate check calls it too).
// Every Kubernetes provider connects with it.
func RESTConfig(s config.KubernetesAPI) (*rest.Config, error) {
	if s.Endpoint == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: no endpoint is configured and %w; set %s.endpoint outside a cluster", err, s.Section)
		}
		return rc, nil
	}
	if err := CheckFiles(s); err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            s.Endpoint,
		BearerTokenFile: s.TokenFile,
		TLSClientConfig: rest.TLSClientConfig{CAFile: s.CAFile},
	}, nil
}

// CheckFiles reads the token and CA files the settings name, as a
// replica would: the token must not be empty, the CA file must hold PEM
// certificates. The token is never printed.
func CheckFiles(s config.KubernetesAPI) error {
	if s.TokenFile != "" {
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return fmt.Errorf("%s.tokenFile: %w", s.Section, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return fmt.Errorf("%s.tokenFile: %s is empty; it must hold the bearer token", s.Section, s.TokenFile)
		}
	}
	if s.CAFile != "" {
		b, err := os.ReadFile(s.CAFile)
		if err != nil {
			return fmt.Errorf("%s.caFile: %w", s.Section, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("%s.caFile: %s holds no PEM certificate", s.Section, s.CAFile)
		}
	}
	return nil
}

// NewClient connects a client with the settings, or with rc when it is
// not nil, with tollgate's user agent and rate limits.
func NewClient(s config.KubernetesAPI, rc *rest.Config) (*rest.Config, kubernetes.Interface, error) {
	if rc == nil {
		var err error
		if rc, err = RESTConfig(s); err != nil {
			return nil, nil, err
		}
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = cmp.Or(rc.UserAgent, "tollgate")
	// client-go's default (5 requests a second) would make a new leader
	// take minutes to write the status of a thousand objects.
	rc.QPS, rc.Burst = cmp.Or(rc.QPS, 50), cmp.Or(rc.Burst, 100)
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	return rc, client, nil
}

// New checks cfg and connects a client; Run starts following.
func New(cfg Config) (*Provider, error) {
	if cfg.Settings == nil || cfg.Sink == nil || cfg.Base == nil {
		return nil, errors.New("kubernetes provider: Settings, Sink and Base are required")
	}
	_, client, err := NewClient(cfg.Settings.API(), cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("kubernetes provider: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		cfg:      cfg,
		log:      log.With("provider", ProviderName),
		client:   client,
		tr:       newTranslator(cfg.Settings, cfg.Base, cfg.CheckPair),
		throttle: cmp.Or(cfg.Settings.ThrottleDuration.Std(), 50*time.Millisecond),
		metrics:  newMetrics(cfg.Registerer),
		kick:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
		reported: map[objectRef][]string{},
	}, nil
}

// Client is the provider's API client, for status and events.
func (p *Provider) Client() kubernetes.Interface { return p.client }

// Ready is closed once the first configuration from the API server is in
// force.
func (p *Provider) Ready() <-chan struct{} { return p.ready }

// listers read the informers' caches.
type listers struct {
	ingresses []cache.Indexer
	services  []cache.Indexer
	slices    []cache.Indexer
	secrets   []cache.Indexer
	// authSecrets hold the Opaque Secrets, only with nginx annotations.
	authSecrets []cache.Indexer
	classes     cache.Indexer
}

// Run follows the API server until ctx is done, then returns nil. It
// returns an error only when the informers cannot start.
func (p *Provider) Run(ctx context.Context) error {
	s := p.cfg.Settings
	namespaces := s.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var sel labels.Selector = labels.Everything()
	if s.LabelSelector != "" {
		var err error
		if sel, err = labels.Parse(s.LabelSelector); err != nil {
			return fmt.Errorf("labelSelector: %w", err)
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.poke() },
		UpdateFunc: func(any, any) { p.poke() },
		DeleteFunc: func(any) { p.poke() },
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var factories []Factory
	ls := &listers{}
	add := func(what string, inf cache.SharedIndexInformer) (cache.Indexer, error) {
		return Follow(p.log, what, inf, handler)
	}
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(ns))
		fi := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel.String() }))
		fs := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()
			}))
		for _, step := range []struct {
			what string
			inf  cache.SharedIndexInformer
			to   *[]cache.Indexer
		}{
			{"ingresses", fi.Networking().V1().Ingresses().Informer(), &ls.ingresses},
			{"services", f.Core().V1().Services().Informer(), &ls.services},
			{"endpointslices", f.Discovery().V1().EndpointSlices().Informer(), &ls.slices},
			{"secrets", fs.Core().V1().Secrets().Informer(), &ls.secrets},
		} {
			ix, err := add(step.what, step.inf)
			if err != nil {
				return err
			}
			*step.to = append(*step.to, ix)
		}
		factories = append(factories, f, fi, fs)
		if len(s.NginxClasses()) > 0 {
			// auth-secret names an Opaque Secret: follow them, so that a
			// change of the users translates the Ingresses again.
			fa := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(ns),
				informers.WithTweakListOptions(func(o *metav1.ListOptions) {
					o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeOpaque)).String()
				}))
			ix, err := add("secrets (Opaque)", fa.Core().V1().Secrets().Informer())
			if err != nil {
				return err
			}
			ls.authSecrets = append(ls.authSecrets, ix)
			factories = append(factories, fa)
		}
	}
	fc := informers.NewSharedInformerFactory(p.client, 0)
	ix, err := add("ingressclasses", fc.Networking().V1().IngressClasses().Informer())
	if err != nil {
		return err
	}
	ls.classes = ix
	factories = append(factories, fc)
	stop := Sync(ctx, p.log, factories, "still waiting for the first complete listing from the API server; not ready until then", "endpoint", p.cfg.Settings.Endpoint)
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
	p.log.Info("following the API server", "namespaces", strings.Join(s.Namespaces, ","), "label_selector", s.LabelSelector, "ingress_class", s.IngressClass)
	p.poke()
	Rebuilds(ctx, p.kick, p.throttle, p.rebuild, p.ready)
	return nil
}

// poke asks for a rebuild.
func (p *Provider) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// rebuild translates what the caches hold and hands it to the sink,
// unless it is what the sink has already; false means the sink refused it
// whole.
func (p *Provider) rebuild() bool {
	start := time.Now()
	p.mu.Lock()
	ls := p.listers
	p.mu.Unlock()
	res := p.tr.translate(snapshot(ls))
	p.mu.Lock()
	same := p.applied != nil && reflect.DeepEqual(p.applied, res.provided)
	refused := p.refused
	p.mu.Unlock()
	if !same {
		var err error
		refused, err = p.cfg.Sink.SetProvided(res.provided)
		p.metrics.rebuilds.Inc()
		p.metrics.rebuildSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			p.metrics.rejected.Inc()
			if msg := err.Error(); msg != p.lastErr {
				p.log.Error("the routes from Kubernetes were refused; the previous ones stay in force", "err", err)
				p.lastErr = msg
			}
			return false
		}
		p.lastErr = ""
	}
	// Served: the Ingresses whose routes are in force.
	out := map[string]bool{}
	for _, r := range refused {
		out[r.Owner] = true
	}
	parts := map[string]bool{}
	for _, part := range res.provided.Parts {
		parts[part.Owner] = !out[part.Owner]
	}
	for canary, main := range res.canaries {
		parts[canary] = parts[canary] || parts[main]
	}
	var served []*netv1.Ingress
	uids := make(map[objectRef]types.UID, len(res.served))
	for _, ing := range res.served {
		uids[objectRef{"Ingress", ing.Namespace, ing.Name}] = ing.UID
		if parts["ingress "+ing.Namespace+"/"+ing.Name] {
			served = append(served, ing)
		}
	}
	p.mu.Lock()
	p.served, p.uids = served, uids
	p.applied, p.refused = res.provided, refused
	p.mu.Unlock()
	p.report(res.problems, refused)
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

// Refused is told the parts a merge refused when something other than
// the provider changed (the file or store configuration): it rebuilds, so
// that the problems are reported with them.
func (p *Provider) Refused(refused []config.Refusal) {
	p.mu.Lock()
	p.refused = refused
	p.mu.Unlock()
	p.poke()
}

// report logs each problem once, when it appears, and says when an
// object has none left.
func (p *Provider) report(problems map[objectRef][]string, refused []config.Refusal) {
	all := map[objectRef][]string{}
	for ref, msgs := range problems {
		all[ref] = slices.Clone(msgs)
	}
	for _, r := range refused {
		kind, nsName, _ := strings.Cut(r.Owner, " ")
		ns, name, _ := strings.Cut(nsName, "/")
		ref := objectRef{kind: "Ingress", namespace: ns, name: name}
		if kind != "ingress" {
			ref.kind = kind
		}
		all[ref] = append(all[ref], "not served: "+r.Err.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for ref, msgs := range all {
		n += len(msgs)
		old := p.reported[ref]
		for _, m := range msgs {
			if !slices.Contains(old, m) {
				p.log.Warn("kubernetes object has a problem", "object", ref.String(), "problem", m)
			}
		}
	}
	for ref := range p.reported {
		if _, still := all[ref]; !still {
			p.log.Info("kubernetes object has no problem left", "object", ref.String())
		}
	}
	p.reported = all
	p.metrics.problems.Set(float64(n))
}

// snapshot copies what the caches hold.
func snapshot(ls *listers) *objects {
	o := &objects{
		services: map[string]*corev1.Service{},
		slices:   map[string][]*discoveryv1.EndpointSlice{},
		secrets:  map[string]*corev1.Secret{},
	}
	for _, ix := range ls.ingresses {
		for _, v := range ix.List() {
			if ing, ok := v.(*netv1.Ingress); ok {
				o.ingresses = append(o.ingresses, ing)
			}
		}
	}
	for _, v := range ls.classes.List() {
		if c, ok := v.(*netv1.IngressClass); ok {
			o.classes = append(o.classes, c)
		}
	}
	for _, ix := range ls.services {
		for _, v := range ix.List() {
			if s, ok := v.(*corev1.Service); ok {
				o.services[s.Namespace+"/"+s.Name] = s
			}
		}
	}
	for _, ix := range ls.slices {
		for _, v := range ix.List() {
			if es, ok := v.(*discoveryv1.EndpointSlice); ok {
				if svc := es.Labels[labelServiceName]; svc != "" {
					key := es.Namespace + "/" + svc
					o.slices[key] = append(o.slices[key], es)
				}
			}
		}
	}
	for _, ix := range ls.authSecrets {
		for _, v := range ix.List() {
			if s, ok := v.(*corev1.Secret); ok && s.Type == corev1.SecretTypeOpaque {
				if o.authSecrets == nil {
					o.authSecrets = map[string]*corev1.Secret{}
				}
				o.authSecrets[s.Namespace+"/"+s.Name] = s
			}
		}
	}
	for _, ix := range ls.secrets {
		for _, v := range ix.List() {
			if s, ok := v.(*corev1.Secret); ok && s.Type == corev1.SecretTypeTLS {
				o.secrets[s.Namespace+"/"+s.Name] = s
			}
		}
	}
	return o
}

type metrics struct {
	rebuilds       prometheus.Counter
	rejected       prometheus.Counter
	rebuildSeconds prometheus.Histogram
	problems       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_kubernetes_rebuilds_total",
			Help: "Rebuilds of the routes from the Kubernetes objects."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_kubernetes_rebuilds_rejected_total",
			Help: "Rebuilds whose routes the router refused (the previous ones stayed in force)."}),
		rebuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tollgate_kubernetes_rebuild_seconds",
			Help: "Time to rebuild and apply the routes after a change.", Buckets: []float64{.001, .005, .02, .1, .5, 2}}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_kubernetes_object_problems",
			Help: "Problems found in the served Ingresses and what they reference (each also logged, and an Event on the object)."}),
	}
	if reg != nil {
		reg.MustRegister(m.rebuilds, m.rejected, m.rebuildSeconds, m.problems)
	}
	return m
}
