// Package conversation is threadgate's handover state machine: who owns a
// user's thread with a Page, whether the bot is paused for the user, when a
// thread taken by another app is due to come back, and what the gateway must
// do about each event.
//
// It is pure. A conversation's State is a plain value that a store can keep
// (in its binary form, State.MarshalBinary and State.UnmarshalBinary; it
// round-trips through encoding/json too). Handle takes a State, an Event, the
// time and the Settings, and returns the new State and the Effects the
// gateway must carry out, in order: run the rules, run a step, ask the
// platform who owns the thread, watch the thread for its return, tell the
// Observer, log a note. What the gateway's calls do to the thread goes back
// through Apply, which again returns a new State and Effects. Nothing here
// reads the clock, calls the platform or logs.
//
// A typical event, as the gateway handles it:
//
//	st := store.Load(key)
//	st, effects := conversation.Handle(st, event, now, settings)
//	// for each effect: RunRules → engine, then each conversation.Calls
//	// entry → actions; each step's error → conversation.Apply(st,
//	// StepDone{…}) → more effects; LookupOwner → platform →
//	// conversation.Apply(st, OwnerFound{…}); Watch, Observe, Note.
//	store.Save(key, st)
//
// The return timer keeps its heap of watched conversations in the gateway;
// Settings.ReturnWait and CheckWatched decide for it, and a due thread is
// handled as an EventReturnDue in the user's queue lane.
package conversation
