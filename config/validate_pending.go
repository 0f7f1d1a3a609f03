package config

import "slices"

// pending refuses a setting that decodes but that replicas do not apply
// yet: accepting it would promise what does not happen.
func (v *validator) pending(path []string, what string) {
	v.add(path, "%s are not implemented yet; remove it", what)
}

// pendingSettings refuses the parts of the configuration the replicas do
// not apply yet.
func (v *validator) pendingSettings() {
	if h := v.cfg.HTTP; h != nil {
		for _, name := range sorted(h.Middlewares) {
			m := h.Middlewares[name]
			if m == nil {
				continue
			}
			at := func(typ string) []string { return append(slices.Clip(p("http", "middlewares", name)), typ) }
			switch {
			case m.ForwardAuth != nil:
				v.pending(at("forwardAuth"), "forwardAuth middlewares")
			case m.Errors != nil:
				v.pending(at("errors"), "errors middlewares")
			case m.ReplacePath != nil:
				v.pending(at("replacePath"), "replacePath middlewares")
			case m.ReplacePathRegex != nil:
				v.pending(at("replacePathRegex"), "replacePathRegex middlewares")
			case m.StripPrefixRegex != nil:
				v.pending(at("stripPrefixRegex"), "stripPrefixRegex middlewares")
			case m.InFlightReq != nil:
				v.pending(at("inFlightReq"), "inFlightReq middlewares")
			case m.Buffering != nil:
				v.pending(at("buffering"), "buffering middlewares")
			case m.ContentType != nil:
				v.pending(at("contentType"), "contentType middlewares")
			}
		}
	}
}
