package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// grpcPod starts a pod serving the gRPC health service over h2c, which
// knows the service name and nothing else: Check of name answers SERVING
// there only, and List names it.
func (e *gwEnv) grpcPod(name, ip string) *pod {
	e.t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(podPort)))
	if err != nil {
		e.t.Fatalf("pod %s: %v", name, err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	e.t.Cleanup(srv.Stop)
	return &pod{name: name, ip: ip}
}

// testGRPCRoute: a GRPCRoute on an HTTPS listener (tollgate's entry
// points speak HTTP/2 over TLS only) of a Gateway of its own sends each
// method to the backend its method match names, over h2c; a method no
// match takes is answered Unimplemented (tollgate's 404, which gRPC
// clients read so).
func (e *gwEnv) testGRPCRoute(t *testing.T) {
	cert, key, _ := selfSignedPEM(t, "grpc.gw.test")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert)
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "gw", Name: "grpc-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}})
	l := gwListener("grpc", 443, gatewayv1.HTTPSProtocolType, "grpc.gw.test", gatewayv1.NamespacesFromAll)
	l.TLS = &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "grpc-tls"}}}
	e.apply(&gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "gw", Name: "rpc"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: "tollgate", Listeners: []gatewayv1.Listener{l}}})
	e.service("apps", "g-check", e.grpcPod("g-check", "10.77.105.1"))
	e.service("apps", "g-list", e.grpcPod("g-list", "10.77.105.2"))
	to := func(svc string) []gatewayv1.GRPCBackendRef {
		return []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(svc), Port: ptrTo(gatewayv1.PortNumber(80))}}}}
	}
	route := &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "rpc"}, Spec: gatewayv1.GRPCRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Namespace: ptrTo(gatewayv1.Namespace("gw")), Name: "rpc"}}},
		Rules: []gatewayv1.GRPCRouteRule{
			{Matches: []gatewayv1.GRPCRouteMatch{{Method: &gatewayv1.GRPCMethodMatch{Service: ptrTo("grpc.health.v1.Health"), Method: ptrTo("Check")}}}, BackendRefs: to("g-check")},
			{Matches: []gatewayv1.GRPCRouteMatch{{Method: &gatewayv1.GRPCMethodMatch{Type: ptrTo(gatewayv1.GRPCMethodMatchRegularExpression),
				Service: ptrTo(`grpc\.health\.v1\.Health`), Method: ptrTo("Li.*")}}}, BackendRefs: to("g-list")},
		},
	}}
	if _, err := e.gw.GatewayV1().GRPCRoutes("apps").Create(e.ctx(), route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last string
	waitFor(t, 30*time.Second, "GRPCRoute apps/rpc Accepted and ResolvedRefs", func() bool {
		r, err := e.gw.GatewayV1().GRPCRoutes("apps").Get(context.Background(), "rpc", metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", r.Status.Parents)
		return slices.ContainsFunc(r.Status.Parents, func(ps gatewayv1.RouteParentStatus) bool {
			return ps.ControllerName == gwController && hasCond(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted") &&
				hasCond(ps.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
		})
	}, func() string { return last })

	for _, r := range e.c.replicas {
		if r.cmd == nil {
			continue
		}
		creds := credentials.NewTLS(&tls.Config{ServerName: "grpc.gw.test", RootCAs: roots})
		conn, err := grpc.NewClient(fmt.Sprintf("passthrough:///127.0.0.1:%d", r.https), grpc.WithTransportCredentials(creds), grpc.WithAuthority("grpc.gw.test"))
		if err != nil {
			t.Fatal(err)
		}
		client := healthpb.NewHealthClient(conn)
		call := func(f func(ctx context.Context) error) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return f(ctx)
		}
		var lastErr error
		waitFor(t, 30*time.Second, "Check through replica "+r.id+" at g-check", func() bool {
			lastErr = call(func(ctx context.Context) error {
				res, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "g-check"})
				if err == nil && res.Status != healthpb.HealthCheckResponse_SERVING {
					err = fmt.Errorf("status %s", res.Status)
				}
				return err
			})
			return lastErr == nil
		}, func() string { return fmt.Sprint(lastErr, "\n", tail(r.log.String(), 20)) })
		// List goes to g-list, which knows g-list only.
		err = call(func(ctx context.Context) error {
			res, err := client.List(ctx, &healthpb.HealthListRequest{})
			if err != nil {
				return err
			}
			if _, ok := res.Statuses["g-list"]; !ok || len(res.Statuses) != 2 {
				return fmt.Errorf("List answered %v, want g-list's statuses", res.Statuses)
			}
			return nil
		})
		if err != nil {
			t.Errorf("replica %s: List: %v", r.id, err)
		}
		// Check of g-list goes to g-check, which does not know it.
		err = call(func(ctx context.Context) error {
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "g-list"})
			return err
		})
		if status.Code(err) != codes.NotFound {
			t.Errorf("replica %s: Check of g-list: %v, want NotFound from g-check", r.id, err)
		}
		// Watch matches no method match.
		err = call(func(ctx context.Context) error {
			stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("replica %s: Watch: %v, want Unimplemented (no route)", r.id, err)
		}
		t.Logf("replica %s: Check at g-check, List at g-list, Watch: %v", r.id, err)
		_ = conn.Close()
	}
}
