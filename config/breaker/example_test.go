package breaker_test

import (
	"fmt"

	"github.com/tollgate-proxy/tollgate/config/breaker"
)

// ratios are fixed measurements to evaluate an expression against.
type ratios struct{ network, codes, latency float64 }

func (r ratios) NetworkErrorRatio() float64               { return r.network }
func (r ratios) ResponseCodeRatio(_, _, _, _ int) float64 { return r.codes }
func (r ratios) LatencyAtQuantileMS(float64) float64      { return r.latency }

func ExampleParse() {
	e, err := breaker.Parse("NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(99) > 800")
	if err != nil {
		panic(err)
	}
	fmt.Println(e)
	fmt.Println(e.Eval(ratios{network: 0.1, latency: 950}))

	_, err = breaker.Parse("NetworkErrorRatio() = 0.5")
	fmt.Println(err)
	// Output:
	// (NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(99) > 800)
	// true
	// column 21: unexpected character '='
}
