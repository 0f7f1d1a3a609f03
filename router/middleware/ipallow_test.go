package middleware

import (
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

func TestIPAllowList(t *testing.T) {
	tests := []struct {
		name      string
		cfg       config.IPAllowList
		headers   []string
		want      int
		wantBody  string
		wantCalls int
	}{
		{name: "remote address allowed", cfg: config.IPAllowList{SourceRange: []string{"127.0.0.1"}}, want: 200, wantBody: "next", wantCalls: 1},
		{name: "remote address in range", cfg: config.IPAllowList{SourceRange: []string{"10.0.0.0/8", "127.0.0.0/8"}}, want: 200, wantBody: "next", wantCalls: 1},
		{name: "remote address refused", cfg: config.IPAllowList{SourceRange: []string{"10.0.0.0/8"}}, want: 403, wantBody: "Forbidden\n"},
		{
			name: "header ignored without strategy", cfg: config.IPAllowList{SourceRange: []string{"203.0.113.0/24"}},
			headers: []string{"X-Forwarded-For: 203.0.113.7"}, want: 403, wantBody: "Forbidden\n",
		},
		{
			name: "reject status", cfg: config.IPAllowList{SourceRange: []string{"10.0.0.0/8"}, RejectStatusCode: 404},
			want: 404, wantBody: "Not Found\n",
		},
		{
			name: "depth allowed",
			cfg: config.IPAllowList{SourceRange: []string{"203.0.113.0/24"},
				IPStrategy: &config.IPStrategy{Depth: 1}},
			headers: []string{"X-Forwarded-For: 198.51.100.1, 203.0.113.7"}, want: 200, wantBody: "next", wantCalls: 1,
		},
		{
			name: "depth refused",
			cfg: config.IPAllowList{SourceRange: []string{"203.0.113.0/24"},
				IPStrategy: &config.IPStrategy{Depth: 2}},
			headers: []string{"X-Forwarded-For: 198.51.100.1, 203.0.113.7"}, want: 403, wantBody: "Forbidden\n",
		},
		{
			name: "no client IP refused",
			cfg: config.IPAllowList{SourceRange: []string{"0.0.0.0/0", "::/0"},
				IPStrategy: &config.IPStrategy{Depth: 1}},
			want: 403, wantBody: "Forbidden\n",
		},
		{
			name: "excluded proxies skipped",
			cfg: config.IPAllowList{SourceRange: []string{"198.51.100.0/24"},
				IPStrategy: &config.IPStrategy{ExcludedIPs: []string{"203.0.113.0/24"}}},
			headers: []string{"X-Forwarded-For: 198.51.100.1, 203.0.113.7, 203.0.113.8"}, want: 200, wantBody: "next", wantCalls: 1,
		},
		{
			name: "IPv6 range",
			cfg: config.IPAllowList{SourceRange: []string{"2001:db8::/32"},
				IPStrategy: &config.IPStrategy{Depth: 1}},
			headers: []string{"X-Forwarded-For: 2001:db8::42"}, want: 200, wantBody: "next", wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &mwNext{}
			h, err := NewIPAllowList(next, &tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := mwGet(t, newMWServer(t, h), tt.headers...)
			if resp.StatusCode != tt.want || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.want, tt.wantBody)
			}
			if next.calls() != tt.wantCalls {
				t.Errorf("got %d calls of next, want %d", next.calls(), tt.wantCalls)
			}
		})
	}
}

func TestNewIPAllowListErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.IPAllowList
		want string
	}{
		{name: "nil", cfg: nil, want: "no configuration"},
		{name: "no ranges", cfg: &config.IPAllowList{}, want: "sourceRange is empty"},
		{name: "bad range", cfg: &config.IPAllowList{SourceRange: []string{"10.0.0.0/8", "ten"}}, want: `"ten" is neither`},
		{name: "bad status", cfg: &config.IPAllowList{SourceRange: []string{"10.0.0.0/8"}, RejectStatusCode: 200}, want: "not an error status"},
		{
			name: "bad strategy",
			cfg:  &config.IPAllowList{SourceRange: []string{"10.0.0.0/8"}, IPStrategy: &config.IPStrategy{ExcludedIPs: []string{"x"}}},
			want: "excluded IPs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewIPAllowList(&mwNext{}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
