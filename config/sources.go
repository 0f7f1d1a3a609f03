package config

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// Sources is where the configuration from the file or the store meets what
// providers supply: it merges them (Merge) and applies the result
// whenever either changes, one change at a time.
type Sources struct {
	apply func(*Config) error

	mu       sync.Mutex
	base     *Config
	provided map[string]*Provided // by provider
	current  *Config
	refused  map[string][]Refusal // by provider, of the merge in force
	notify   []func(provider string, refused []Refusal)
}

// NewSources returns Sources for the configuration base, which is in
// force already (the replica started with it); apply puts a merged
// configuration in force, or returns why it cannot, leaving the previous
// one in force.
func NewSources(base *Config, apply func(*Config) error) *Sources {
	return &Sources{apply: apply, base: base, current: base, provided: map[string]*Provided{}, refused: map[string][]Refusal{}}
}

// OnRefused registers f, called after SetBase put a merge in force with
// each provider's refused parts (all of them, possibly none), from
// SetBase's goroutine; f must not call Sources. (SetProvided returns its
// provider's refusals instead.)
func (s *Sources) OnRefused(f func(provider string, refused []Refusal)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify = append(s.notify, f)
}

// SetBase replaces the configuration from the file or the store: it is
// the configuration watcher's OnSnapshot. An error leaves everything as
// it was.
func (s *Sources) SetBase(cfg *Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.merge(cfg, s.provided); err != nil {
		return err
	}
	s.base = cfg
	for _, f := range s.notify {
		for _, name := range slices.Sorted(maps.Keys(s.provided)) {
			f(name, slices.Clone(s.refused[name]))
		}
	}
	return nil
}

// SetProvided replaces what p.Provider supplies. It returns the parts
// the merge refused; an error (apply refused the merge) leaves everything
// as it was.
func (s *Sources) SetProvided(p *Provided) ([]Refusal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	provided := make(map[string]*Provided, len(s.provided)+1)
	for k, v := range s.provided {
		provided[k] = v
	}
	provided[p.Provider] = p
	if err := s.merge(s.base, provided); err != nil {
		return nil, err
	}
	s.provided = provided
	return slices.Clone(s.refused[p.Provider]), nil
}

// Current returns the merged configuration in force.
func (s *Sources) Current() *Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// merge applies base merged with provided; s.mu is held. When apply
// refuses the merge because of a provider's part (its error names one of
// the part's routers or services: the router's rules go beyond what
// Merge checks, such as a users file a middleware reads), that part is
// refused and the merge applied without it, so that one object never
// holds back the others nor the file or store configuration.
func (s *Sources) merge(base *Config, provided map[string]*Provided) error {
	names := slices.Sorted(maps.Keys(provided))
	excluded := map[*Part]error{}
	for {
		var list []*Provided
		for _, name := range names {
			p := provided[name]
			if len(excluded) > 0 {
				p = &Provided{Provider: p.Provider, Parts: slices.DeleteFunc(slices.Clone(p.Parts), func(part *Part) bool { return excluded[part] != nil })}
			}
			list = append(list, p)
		}
		merged, refusals := base, []Refusal(nil)
		if len(list) > 0 {
			merged, refusals = Merge(base, list...)
		}
		err := s.apply(merged)
		if err != nil {
			part := partNamedIn(err, list)
			if part == nil {
				return err
			}
			excluded[part] = err
			continue
		}
		for _, name := range names {
			for _, part := range provided[name].Parts {
				if e := excluded[part]; e != nil {
					refusals = append(refusals, Refusal{Provider: name, Owner: part.Owner, Err: e})
				}
			}
		}
		s.current = merged
		byProvider := map[string][]Refusal{}
		for _, r := range refusals {
			byProvider[r.Provider] = append(byProvider[r.Provider], r)
		}
		s.refused = byProvider
		return nil
	}
}

// partNamedIn returns the part whose router or service err names, as
// the router names them ("router NAME: …", "service NAME: …").
func partNamedIn(err error, list []*Provided) *Part {
	msg := err.Error()
	for _, p := range list {
		for _, part := range p.Parts {
			for name := range part.Routers {
				if strings.Contains(msg, "router "+name+":") {
					return part
				}
			}
			for name := range part.Services {
				if strings.Contains(msg, "service "+name+":") {
					return part
				}
			}
		}
	}
	return nil
}
