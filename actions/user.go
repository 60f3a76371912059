package actions

// Templates may read the person's profile: {{ .User.FirstName }} and the
// other fields of messenger.UserProfile. The gateway fetches the profile
// (through a messenger.UserProfileCache) only for a rule whose templates
// read it: ReadsUser tells, at load.

// UserReader is implemented by actions that know whether their templates
// read .User.
type UserReader interface {
	// ReadsUser reports whether a template of the action reads .User.
	ReadsUser() bool
}

// ReadsUser reports whether any of the actions reads .User, so that the
// profile is fetched only for the rules that need it.
func ReadsUser(list []Action) bool {
	for _, a := range list {
		if r, ok := a.(UserReader); ok && r.ReadsUser() {
			return true
		}
	}
	return false
}

// ReadsUser reports whether the template reads .User. A nil template does not.
func (t *Template) ReadsUser() bool { return t != nil && t.readsUser }

var (
	_ UserReader = (*replyAction)(nil)
	_ UserReader = (*echoAction)(nil)
	_ UserReader = (*passAction)(nil)
	_ UserReader = (*controlAction)(nil)
)

// ReadsUser reports whether the reply's text or cards read .User.
func (a *replyAction) ReadsUser() bool {
	if a.text.ReadsUser() {
		return true
	}
	for _, c := range a.cards {
		if c.title.ReadsUser() || c.subtitle.ReadsUser() {
			return true
		}
	}
	return false
}

// ReadsUser reports whether the echo's prefix reads .User.
func (a *echoAction) ReadsUser() bool { return a.prefix.ReadsUser() }

// ReadsUser reports whether the handover metadata reads .User.
func (a *passAction) ReadsUser() bool { return a.metadata.ReadsUser() }

// ReadsUser reports whether the handover metadata reads .User.
func (a *controlAction) ReadsUser() bool { return a.metadata.ReadsUser() }
