package breaker

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// fakeMetrics returns fixed values and records the arguments it got.
type fakeMetrics struct {
	netErr, codeRatio, latency float64
	got                        []string
}

func (m *fakeMetrics) NetworkErrorRatio() float64 {
	m.got = append(m.got, "NetworkErrorRatio()")
	return m.netErr
}

func (m *fakeMetrics) ResponseCodeRatio(from, to, dividendFrom, dividendTo int) float64 {
	m.got = append(m.got, fmt.Sprintf("ResponseCodeRatio(%d, %d, %d, %d)", from, to, dividendFrom, dividendTo))
	return m.codeRatio
}

func (m *fakeMetrics) LatencyAtQuantileMS(q float64) float64 {
	m.got = append(m.got, fmt.Sprintf("LatencyAtQuantileMS(%v)", q))
	return m.latency
}

var validCases = []struct {
	expr      string
	canonical string
	metrics   fakeMetrics
	want      bool
	wantCalls string // the metrics evaluated, in order
}{
	{
		expr: "NetworkErrorRatio() > 0.5", canonical: "NetworkErrorRatio() > 0.5",
		metrics: fakeMetrics{netErr: 0.6}, want: true, wantCalls: "[NetworkErrorRatio()]",
	},
	{
		expr: "NetworkErrorRatio() > 0.5", canonical: "NetworkErrorRatio() > 0.5",
		metrics: fakeMetrics{netErr: 0.5}, want: false, wantCalls: "[NetworkErrorRatio()]",
	},
	{
		expr: "ResponseCodeRatio(500, 600, 0, 600) > 0.25", canonical: "ResponseCodeRatio(500, 600, 0, 600) > 0.25",
		metrics: fakeMetrics{codeRatio: 0.3}, want: true, wantCalls: "[ResponseCodeRatio(500, 600, 0, 600)]",
	},
	{
		expr: "LatencyAtQuantileMS(50.0) > 100", canonical: "LatencyAtQuantileMS(50) > 100",
		metrics: fakeMetrics{latency: 100}, want: false, wantCalls: "[LatencyAtQuantileMS(50)]",
	},
	{
		expr: "LatencyAtQuantileMS(99.9) >= 100", canonical: "LatencyAtQuantileMS(99.9) >= 100",
		metrics: fakeMetrics{latency: 100}, want: true, wantCalls: "[LatencyAtQuantileMS(99.9)]",
	},
	{
		expr:      "NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50) >= 200 && ResponseCodeRatio(500,600,0,600) != 0",
		canonical: "(NetworkErrorRatio() > 0.5 || (LatencyAtQuantileMS(50) >= 200 && ResponseCodeRatio(500, 600, 0, 600) != 0))",
		metrics:   fakeMetrics{latency: 250, codeRatio: 0.1}, want: true,
		wantCalls: "[NetworkErrorRatio() LatencyAtQuantileMS(50) ResponseCodeRatio(500, 600, 0, 600)]",
	},
	{
		expr:      "(NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50) > 10) && ResponseCodeRatio(500, 600, 0, 600) > 0.1",
		canonical: "((NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50) > 10) && ResponseCodeRatio(500, 600, 0, 600) > 0.1)",
		metrics:   fakeMetrics{netErr: 1}, want: false,
		wantCalls: "[NetworkErrorRatio() ResponseCodeRatio(500, 600, 0, 600)]",
	},
	{
		expr: "NetworkErrorRatio() < 0.1 && NetworkErrorRatio() > 0.9", canonical: "(NetworkErrorRatio() < 0.1 && NetworkErrorRatio() > 0.9)",
		metrics: fakeMetrics{netErr: 0.5}, want: false, wantCalls: "[NetworkErrorRatio()]",
	},
	{
		expr: "0.5 < NetworkErrorRatio()", canonical: "0.5 < NetworkErrorRatio()",
		metrics: fakeMetrics{netErr: 0.7}, want: true, wantCalls: "[NetworkErrorRatio()]",
	},
	{
		expr: "NetworkErrorRatio() == LatencyAtQuantileMS(1)", canonical: "NetworkErrorRatio() == LatencyAtQuantileMS(1)",
		metrics: fakeMetrics{}, want: true, wantCalls: "[NetworkErrorRatio() LatencyAtQuantileMS(1)]",
	},
	{
		expr: "NetworkErrorRatio() <= -1", canonical: "NetworkErrorRatio() <= -1",
		metrics: fakeMetrics{}, want: false, wantCalls: "[NetworkErrorRatio()]",
	},
	{
		expr: "\t((NetworkErrorRatio( )>0.5))\n", canonical: "NetworkErrorRatio() > 0.5",
		metrics: fakeMetrics{netErr: 0.6}, want: true, wantCalls: "[NetworkErrorRatio()]",
	},
}

var invalidCases = []struct {
	expr string
	want string
}{
	{"", "column 1: expected a metric such as NetworkErrorRatio() or a number, found the end of the expression"},
	{"NetworkErrorRatio() >", "column 22: expected a metric such as NetworkErrorRatio() or a number, found the end of the expression"},
	{"NetworkErrorRatio > 0.5", `column 19: expected ( after NetworkErrorRatio, found ">"`},
	{"NetworkErrorRatio()", "column 20: expected a comparison operator (>, <, >=, <=, ==, !=), found the end of the expression"},
	{"NetworkErrorRatio() = 1", `column 21: unexpected character '='`},
	{"NetworkErrorRate() > 0.5", "column 1: unknown function NetworkErrorRate: expected NetworkErrorRatio, ResponseCodeRatio or LatencyAtQuantileMS"},
	{"ResponseCodeRatio(500, 600) > 0.5", "column 27: ResponseCodeRatio takes 4 arguments, found 2"},
	{"NetworkErrorRatio(1) > 0.5", "column 20: NetworkErrorRatio takes 0 arguments, found 1"},
	{"ResponseCodeRatio(600, 500, 0, 600) > 0.5", "column 1: ResponseCodeRatio(from, to, dividendFrom, dividendTo): from must be below to"},
	{"ResponseCodeRatio(500.5, 600, 0, 600) > 0.5", "column 1: ResponseCodeRatio: argument 1 (500.5) is not a status code from 0 to 1000"},
	{"LatencyAtQuantileMS(0) > 1", "column 1: LatencyAtQuantileMS: quantile 0 is not a percentage above 0 and at most 100"},
	{"LatencyAtQuantileMS(50 > 1", `column 24: expected , or ) in the arguments of LatencyAtQuantileMS, found ">"`},
	{"LatencyAtQuantileMS(,) > 1", `column 21: expected a number as argument 1 of LatencyAtQuantileMS, found ","`},
	{"NetworkErrorRatio() > 0.5 &&", "column 29: expected a metric such as NetworkErrorRatio() or a number, found the end of the expression"},
	{"NetworkErrorRatio() > 0.5 & x", "column 27: unexpected character '&'"},
	{"(NetworkErrorRatio() > 0.5", "column 27: expected ) or && or ||, found the end of the expression"},
	{"NetworkErrorRatio() > 0.5)", `column 26: expected && or || or the end of the expression, found ")"`},
	{"NetworkErrorRatio() > 0.5 NetworkErrorRatio() > 0.5", `column 27: expected && or || or the end of the expression, found "NetworkErrorRatio"`},
	{"1 > 0.5", "column 1: a comparison needs a metric"},
	{"NetworkErrorRatio() > 1.", "column 25: expected a digit after the decimal point"},
	{"NetworkErrorRatio() > -", "column 24: expected a digit"},
	{"NetworkErrorRatio() > .5", "column 23: unexpected character '.'"},
	{"NetworkErrorRatio() > 0.5 ∧ x", "column 27: unexpected character '∧'"},
	{"ünknown() > 1", "column 1: unexpected character 'ü'"},
	{"NetworkErrorRatio() > 1" + strings.Repeat("0", 400), "column 23: number 1000"},
	{strings.Repeat("(", 100) + "NetworkErrorRatio() > 1" + strings.Repeat(")", 100), "column 65: parentheses nested more than 64 deep"},
}

func TestParse(t *testing.T) {
	for _, tt := range validCases {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := c.String(); got != tt.canonical {
				t.Errorf("got %q, want %q", got, tt.canonical)
			}
			m := tt.metrics
			if got := c.Eval(&m); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got := fmt.Sprint(m.got); got != tt.wantCalls {
				t.Errorf("got metrics %s evaluated, want %s", got, tt.wantCalls)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range invalidCases {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := Parse(tt.expr)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got error %v, want one starting %q", err, tt.want)
			}
		})
	}
}

// FuzzParse checks that the parser never panics, that errors carry
// a column within the input, and that a parsed expression prints as one
// that parses back to the same expression.
func FuzzParse(f *testing.F) {
	for _, tt := range validCases {
		f.Add(tt.expr)
	}
	for _, tt := range invalidCases {
		f.Add(tt.expr)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse(src)
		if err != nil {
			var ee *Error
			if !errors.As(err, &ee) {
				t.Fatalf("%q: got error %T %v, want *Error", src, err, err)
			}
			if ee.Column < 1 || ee.Column > utf8.RuneCountInString(src)+1 || ee.Offset < 0 || ee.Offset > len(src) || ee.Column != utf8.RuneCountInString(src[:ee.Offset])+1 {
				t.Fatalf("%q: got column %d at offset %d, want 1 to %d matching the offset", src, ee.Column, ee.Offset, utf8.RuneCountInString(src)+1)
			}
			return
		}
		canonical := c.String()
		c2, err := Parse(canonical)
		if err != nil {
			t.Fatalf("%q printed as %q, which fails: %v", src, canonical, err)
		}
		if got := c2.String(); got != canonical {
			t.Fatalf("%q printed as %q, then as %q", src, canonical, got)
		}
		for _, m := range []fakeMetrics{{}, {netErr: 1, codeRatio: 0.5, latency: 1e9}, {netErr: 0.5, codeRatio: 2, latency: 10}} {
			m1, m2 := m, m
			if c.Eval(&m1) != c2.Eval(&m2) || fmt.Sprint(m1.got) != fmt.Sprint(m2.got) {
				t.Fatalf("%q and its print %q evaluate differently", src, canonical)
			}
		}
	})
}
