package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes/nginx"
)

const migrateNginxLong = `Reports, for each Ingress written for ingress-nginx, what tollgate makes of
its nginx.ingress.kubernetes.io annotations when
[providers.kubernetesIngress] has nginxAnnotations = "classes": every
annotation is supported (tollgate does what ingress-nginx does), changed
(carried over with a difference, told in the note) or unsupported (not
carried over: why, and what to do instead); an Ingress whose access guard
(allow or deny list, authentication) or backend protocol cannot be carried
over is refused: tollgate would not serve it, and the report says why. A
canary without a main Ingress of the same namespace, host and path is
reported too. Nothing is written to the cluster.

The Ingresses are read from PATH arguments — YAML or JSON files, several
documents per file and kubectl's List, directories of .yaml, .yml and .json
files read recursively, "-" for standard input — or, without PATH, from the
cluster: --kubeconfig (default $KUBECONFIG, then ~/.kube/config), or the
pod's service account inside a cluster, in --namespace only when given.
Secrets named by auth-secret are read from the same place (from the
cluster one by one, with get).

Only the Ingresses of the --classes (default nginx) are reported, as the
provider selects them: spec.ingressClassName names one (and its
IngressClass, when known, has the controller k8s.io/ingress-nginx or
tollgate's), or the kubernetes.io/ingress.class annotation does, or an
IngressClass of ingress-nginx among them is the cluster's default.

Exit codes: 0 reported (whatever the report says), 1 the input or the
cluster cannot be read, 2 bad command line, 3 with --strict only: an
annotation is unsupported, or an Ingress is refused or has a problem.`

const migrateNginxExamples = `  tollgate migrate ingress-nginx ingresses.yaml
  kubectl get ingress,ingressclass -A -o yaml | tollgate migrate ingress-nginx -
  tollgate migrate ingress-nginx --kubeconfig ~/.kube/config --namespace shop -o json
  tollgate migrate ingress-nginx --strict k8s/   # in CI: fail on what does not carry over`

// migrateNginxFlags are migrate ingress-nginx's flags.
type migrateNginxFlags struct {
	out        outputFlag
	kubeconfig string
	namespace  string
	classes    []string
	strict     bool
}

func migrateIngressNginxCmd(a *app) *cobra.Command {
	var f migrateNginxFlags
	c := &cobra.Command{
		Use:     "ingress-nginx [--kubeconfig FILE] [--namespace NS] [--classes LIST] [--strict] [-o FORMAT] [PATH...]",
		Short:   "report what becomes of the ingress-nginx annotations of Ingresses",
		Long:    migrateNginxLong,
		Example: migrateNginxExamples,
		Args:    cobra.ArbitraryArgs,
	}
	c.RunE = runE(func(ctx context.Context, args []string) error {
		return migrateIngressNginx(ctx, f, args, c.InOrStdin(), a.stdout)
	})
	fs := c.Flags()
	f.out.register(fs)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig `file` to read the cluster's Ingresses with (without PATH)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "read the cluster's Ingresses of this `namespace` only (without PATH)")
	fs.StringSliceVar(&f.classes, "classes", []string{"nginx"}, "the ingress-nginx `classes` to report on, comma-separated (nginxIngressClasses)")
	fs.BoolVar(&f.strict, "strict", false, "exit 3 when an annotation is unsupported or an Ingress refused")
	return c
}

func migrateIngressNginx(ctx context.Context, f migrateNginxFlags, paths []string, stdin io.Reader, stdout io.Writer) error {
	if err := f.out.check(); err != nil {
		return err
	}
	settings := &config.KubernetesIngress{NginxAnnotations: config.NginxClasses, NginxIngressClasses: f.classes}
	for _, c := range f.classes {
		if errs := validation.IsDNS1123Subdomain(c); len(errs) > 0 {
			return fail(exitUsage, fmt.Errorf("--classes: %q is not an IngressClass name: %s", c, errs[0]))
		}
	}
	var m kubernetes.Manifests
	var secrets nginx.Secrets
	if len(paths) > 0 {
		if f.kubeconfig != "" || f.namespace != "" {
			return fail(exitUsage, errors.New("--kubeconfig and --namespace read the cluster: give them without PATH"))
		}
		for _, p := range paths {
			if err := readIngressPath(&m, p, stdin); err != nil {
				return err
			}
		}
	} else {
		client, err := clusterClient(f.kubeconfig)
		if err != nil {
			return fail(exitFailure, err)
		}
		if err := readCluster(ctx, client, f.namespace, &m); err != nil {
			return fail(exitFailure, err)
		}
		secrets = clusterSecrets{client}
	}
	reports := kubernetes.ReportNginx(ctx, settings, &m, secrets)
	skipped := skippedIngresses(&m, reports)
	if err := f.out.print(stdout, reports, func(w io.Writer) error { return nginxTable(w, reports, skipped) }); err != nil {
		return fail(exitFailure, err)
	}
	if f.strict && len(reports) == 0 {
		return &exitError{code: exitInvalid, err: fmt.Errorf("no Ingress of the classes %s among the %d read (--strict)", strings.Join(settings.NginxIngressClasses, ", "), len(m.Ingresses))}
	}
	if f.strict {
		for _, r := range reports {
			bad := len(r.Refused) > 0 || len(r.Problems) > 0
			for _, e := range r.Entries {
				bad = bad || e.Status == nginx.Unsupported
			}
			if bad {
				return &exitError{code: exitInvalid, err: errors.New("some annotations do not carry over (--strict)"), quiet: true}
			}
		}
	}
	return nil
}

// skippedIngresses lists the Ingresses read that are not reported (not
// of the classes), each with its class.
func skippedIngresses(m *kubernetes.Manifests, reports []kubernetes.NginxReport) []string {
	reported := map[string]bool{}
	for _, r := range reports {
		reported[r.Namespace+"/"+r.Name] = true
	}
	var out []string
	for _, ing := range m.Ingresses {
		id := cmp.Or(ing.Namespace, "default") + "/" + ing.Name
		if reported[id] {
			continue
		}
		class := "no class"
		if c := ing.Spec.IngressClassName; c != nil {
			class = "class " + *c
		} else if c := ing.Annotations["kubernetes.io/ingress.class"]; c != "" {
			class = "class " + c + " (annotation)"
		}
		out = append(out, id+"\t"+class)
	}
	return out
}

// nginxTable prints the reports, one line per annotation, then the
// Ingresses skipped.
func nginxTable(w io.Writer, reports []kubernetes.NginxReport, skipped []string) error {
	if len(reports) == 0 && len(skipped) == 0 {
		_, err := fmt.Fprintln(w, "no Ingress in the input")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INGRESS\tANNOTATION\tSTATUS\tNOTE")
	for _, s := range skipped {
		id, class, _ := strings.Cut(s, "\t")
		fmt.Fprintf(tw, "%s\t-\tskipped\t%s, not one of --classes: its annotations are not read\n", id, class)
	}
	for _, r := range reports {
		id := r.Namespace + "/" + r.Name
		for _, why := range r.Refused {
			fmt.Fprintf(tw, "%s\t-\tREFUSED\tnot served: %s\n", id, why)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(tw, "%s\t-\tproblem\t%s\n", id, p)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "%s\t-\tnote\t%s\n", id, n)
		}
		if len(r.Entries) == 0 && len(r.Notes) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\tno nginx annotation\n", id)
		}
		for _, e := range r.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, strings.TrimPrefix(e.Annotation, nginx.Prefix), e.Status, e.Note)
		}
	}
	return tw.Flush()
}

// readIngressPath reads a manifest file, a directory of them or "-".
func readIngressPath(m *kubernetes.Manifests, p string, stdin io.Reader) error {
	if p == "-" {
		if err := m.Read("standard input", stdin); err != nil {
			return fail(exitFailure, err)
		}
		return nil
	}
	files, err := readManifests(p, "", exitFailure)
	if err != nil {
		return err
	}
	for _, file := range files {
		if err := m.Read(file.Name, strings.NewReader(string(file.Data))); err != nil {
			return fail(exitFailure, err)
		}
	}
	return nil
}

// clusterClient connects with a kubeconfig, or the pod's service account
// when none is given or found.
func clusterClient(kubeconfig string) (k8s.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if kubeconfig != "" {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
		if rc, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a cluster (%w): give --kubeconfig or PATH", err)
		}
	}
	rc.UserAgent = "tollgate migrate"
	return k8s.NewForConfig(rc)
}

// readCluster lists the Ingresses (of namespace, or all) and the
// IngressClasses.
func readCluster(ctx context.Context, c k8s.Interface, namespace string, m *kubernetes.Manifests) error {
	ings, err := c.NetworkingV1().Ingresses(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Ingresses: %w", err)
	}
	for i := range ings.Items {
		m.Ingresses = append(m.Ingresses, &ings.Items[i])
	}
	classes, err := c.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list IngressClasses: %w", err)
	}
	for i := range classes.Items {
		m.IngressClasses = append(m.IngressClasses, &classes.Items[i])
	}
	return nil
}

// clusterSecrets reads the Secrets auth-secret names from the cluster.
type clusterSecrets struct{ c k8s.Interface }

func (s clusterSecrets) SecretData(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	sec, err := s.c.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return sec.Data, nil
}
