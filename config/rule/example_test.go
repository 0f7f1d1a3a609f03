package rule_test

import (
	"errors"
	"fmt"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

func Example() {
	e, err := rule.Parse("host(`Example.com`) && (PathPrefix(`/api`)||Header(`X-Api`, \"1\"))")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e)
	fmt.Println(rule.Hosts(e))

	_, err = rule.Parse("Host(`a.example`, `b.example`)")
	fmt.Println(err)

	var perr *rule.Error
	_, err = rule.Parse("Host(`a.example`) && Hots(`b.example`)")
	if errors.As(err, &perr) {
		fmt.Printf("at byte %d: %s\n", perr.Offset, perr.Msg)
	}
	// Output:
	// Host(`Example.com`) && (PathPrefix(`/api`) || Header(`X-Api`, `1`))
	// [example.com]
	// column 19: Host takes 1 argument (a host name), found 2; v3 matchers take one value each, combine them with "||": Host(`a.example`) || Host(`b.example`)
	// at byte 21: unknown matcher "Hots"; did you mean "Host"?
}
