package expr_test

import (
	"fmt"

	"github.com/tollgate-proxy/tollgate/config/expr"
)

// load is the environment of a dialect made up for the example.
type load struct{ cpu, queue float64 }

func ExampleParse() {
	d := &expr.Dialect[load]{
		Funcs: []expr.Func[load]{
			{Name: "CPU", Number: func(l load, _ []float64) float64 { return l.cpu }},
			{Name: "Queue", Number: func(l load, _ []float64) float64 { return l.queue }},
		},
		Not:  true,
		Noun: "measure",
	}
	e, err := expr.Parse(d, "CPU() > 0.9 || !(Queue() < 100 && CPU() > 0.5)")
	if err != nil {
		panic(err)
	}
	fmt.Println(e)
	fmt.Println(e.Eval(load{cpu: 0.5, queue: 120}))

	_, err = expr.Parse(d, "Memory() > 1")
	fmt.Println(err)
	// Output:
	// CPU() > 0.9 || !(Queue() < 100 && CPU() > 0.5)
	// true
	// column 1: unknown function Memory: expected CPU or Queue
}
