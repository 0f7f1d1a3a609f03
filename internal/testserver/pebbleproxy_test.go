package testserver

import (
	"encoding/base64"
	"slices"
	"testing"
)

// jws wraps payload as the flattened JWS JSON of an ACME request.
func jws(payload string) string {
	return `{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"` +
		base64.RawURLEncoding.EncodeToString([]byte(payload)) + `","signature":"c2ln"}`
}

var orderIdentifiersTests = []struct {
	name    string
	body    string
	want    []string
	wantErr bool
}{
	{
		name: "two names",
		body: jws(`{"identifiers":[{"type":"dns","value":"a.example"},{"type":"dns","value":"b.example"}]}`),
		want: []string{"a.example", "b.example"},
	},
	{
		name: "ip and profile",
		body: jws(`{"identifiers":[{"type":"ip","value":"192.0.2.1"}],"profile":"default"}`),
		want: []string{"192.0.2.1"},
	},
	{
		name: "padded payload",
		body: `{"payload":"` + base64.URLEncoding.EncodeToString([]byte(`{"identifiers":[{"type":"dns","value":"ab.example"}]}`)) + `"}`,
		want: []string{"ab.example"},
	},
	{name: "no identifiers", body: jws(`{}`), want: []string{}},
	{name: "not json", body: `identifiers`, wantErr: true},
	{name: "no payload", body: `{"protected":"e30","signature":""}`, wantErr: true},
	{name: "payload not base64url", body: `{"payload":"a+b/"}`, wantErr: true},
	{name: "payload not json", body: jws(`identifiers`), wantErr: true},
	{name: "identifiers not a list", body: jws(`{"identifiers":"a.example"}`), wantErr: true},
}

func TestOrderIdentifiers(t *testing.T) {
	for _, tt := range orderIdentifiersTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := orderIdentifiers([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzOrderIdentifiers(f *testing.F) {
	for _, tt := range orderIdentifiersTests {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := orderIdentifiers(body)
		if err != nil && got != nil {
			t.Errorf("got %q with error %v", got, err)
		}
	})
}
