package actions

// Templates may read the user's last messages: {{ .Transcript | join " / " }}.
// The conversation keeps them (in every stored state, on every message) only
// while a rule's templates read them: ReadsTranscript tells, at load.

// TranscriptReader is implemented by actions that know whether their
// templates read .Transcript.
type TranscriptReader interface {
	// ReadsTranscript reports whether a template of the action reads
	// .Transcript.
	ReadsTranscript() bool
}

// ReadsTranscript reports whether any of the actions reads .Transcript, so
// that the transcript is kept only for rule sets that need it.
func ReadsTranscript(list []Action) bool {
	for _, a := range list {
		if r, ok := a.(TranscriptReader); ok && r.ReadsTranscript() {
			return true
		}
	}
	return false
}

// ReadsTranscript reports whether the template reads .Transcript, or may
// (it hands the whole of dot, or $, to a function or a variable). A nil
// template does not.
func (t *Template) ReadsTranscript() bool { return t != nil && t.readsTranscript }

var (
	_ TranscriptReader = (*replyAction)(nil)
	_ TranscriptReader = (*echoAction)(nil)
	_ TranscriptReader = (*passAction)(nil)
	_ TranscriptReader = (*controlAction)(nil)
)

// ReadsTranscript reports whether the reply's text or cards read
// .Transcript.
func (a *replyAction) ReadsTranscript() bool {
	if a.text.ReadsTranscript() {
		return true
	}
	for _, c := range a.cards {
		if c.title.ReadsTranscript() || c.subtitle.ReadsTranscript() {
			return true
		}
	}
	return false
}

// ReadsTranscript reports whether the echo's prefix reads .Transcript.
func (a *echoAction) ReadsTranscript() bool { return a.prefix.ReadsTranscript() }

// ReadsTranscript reports whether the handover metadata reads .Transcript.
func (a *passAction) ReadsTranscript() bool { return a.metadata.ReadsTranscript() }

// ReadsTranscript reports whether the handover metadata reads .Transcript.
func (a *controlAction) ReadsTranscript() bool { return a.metadata.ReadsTranscript() }
