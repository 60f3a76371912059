package actions

// Some of the data templates read costs something to provide: .User is
// asked of the User Profile API, .Transcript is kept in every stored state
// and copied on every message. They are provided only for the rules whose
// templates read them: Reads tells, at load.

// Field names a field of the template data that is provided only for the
// rules whose templates read it.
type Field uint8

const (
	// FieldUser is .User, the person's profile ({{ .User.FirstName }}),
	// fetched through a messenger.UserProfileCache.
	FieldUser Field = 1 << iota
	// FieldTranscript is .Transcript, the person's last messages
	// ({{ .Transcript | join " / " }}), kept by the conversation.
	FieldTranscript
)

// FieldReader is implemented by actions that know which fields their
// templates read.
type FieldReader interface {
	// ReadsField reports whether a template of the action reads f, or
	// may (it hands the whole data on to a function or a variable).
	ReadsField(f Field) bool
}

// Reads reports whether any of the actions reads f, so that it is
// provided only for the rules that need it.
func Reads(list []Action, f Field) bool {
	for _, a := range list {
		if r, ok := a.(FieldReader); ok && r.ReadsField(f) {
			return true
		}
	}
	return false
}

// Reads reports whether the template reads f, or may (it hands the whole
// of dot, or $, to a function or a variable). A nil template does not.
func (t *Template) Reads(f Field) bool { return t != nil && t.reads&f != 0 }

var (
	_ FieldReader = (*replyAction)(nil)
	_ FieldReader = (*echoAction)(nil)
	_ FieldReader = (*passAction)(nil)
	_ FieldReader = (*controlAction)(nil)
)

// ReadsField reports whether the reply's text or cards read f.
func (a *replyAction) ReadsField(f Field) bool {
	if a.text.Reads(f) {
		return true
	}
	for _, c := range a.cards {
		if c.title.Reads(f) || c.subtitle.Reads(f) {
			return true
		}
	}
	return false
}

// ReadsField reports whether the echo's prefix reads f.
func (a *echoAction) ReadsField(f Field) bool { return a.prefix.Reads(f) }

// ReadsField reports whether the handover metadata reads f.
func (a *passAction) ReadsField(f Field) bool { return a.metadata.Reads(f) }

// ReadsField reports whether the handover metadata reads f.
func (a *controlAction) ReadsField(f Field) bool { return a.metadata.Reads(f) }
