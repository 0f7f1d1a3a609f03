package config

// pending refuses a setting that decodes but that replicas do not apply
// yet: accepting it would promise what does not happen.
func (v *validator) pending(path []string, what string) {
	v.add(path, "%s are not implemented yet; remove it", what)
}
