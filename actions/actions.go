// Package actions holds the things a rule can do (reply, echo, hand the
// thread over, show a typing indicator) and runs them against the Messenger
// Platform.
//
// Each action kind lives in its own file: how its YAML is decoded and
// validated, how it is rendered for one event (Plan, pure), and how it is
// executed (Execute, one or more Graph API calls). Every kind is listed in
// one table (registry.go) from which the rules loader, the rule-test runner,
// the JSON Schema and the docs all read.
package actions

import (
	"context"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// Data is what templates see when an action is rendered for one event.
type Data struct {
	Text       string
	Payload    string
	Event      string
	SenderID   string
	PageID     string
	Rule       string
	Groups     map[string]string
	Metadata   string
	Vars       map[string]any
	Owner      string
	Transcript []string
	// User is what the User Profile API gives about the person (empty
	// when the platform refuses or no template of the rule reads it; see
	// Reads and FieldUser). Issue 14.
	User messenger.UserProfile
}

// Platform is the set of Messenger Platform calls that actions make. The
// Graph API client implements it; tests and the sandbox may use their own.
// Implementations must not modify the messages they are given: a step may
// share them with other steps.
type Platform interface {
	SendMessage(ctx context.Context, to messenger.Recipient, msg *messenger.Message) error
	SenderAction(ctx context.Context, to messenger.Recipient, action string) error
	PassThreadControl(ctx context.Context, to messenger.Recipient, targetAppID, metadata string) error
	TakeThreadControl(ctx context.Context, to messenger.Recipient, metadata string) error
	RequestThreadControl(ctx context.Context, to messenger.Recipient, metadata string) error
	ReleaseThreadControl(ctx context.Context, to messenger.Recipient) error
}

// Action is one compiled action of a rule, ready to be rendered for events.
type Action interface {
	// Kind is the action's key in the rules file, e.g. "reply".
	Kind() string
	// Plan renders the action for one event. It does no I/O. A nil Step
	// with a nil error means there is nothing to do for this event. It
	// must not keep d, nor write into its maps: the engine reuses d for
	// other events and shares an empty Groups between them.
	Plan(d *Data) (Step, error)
}

// Step is an action rendered for one event: what will be sent.
type Step interface {
	// Kind is the action's key in the rules file.
	Kind() string
	// Fields describes the step for rule tests, explain output and logs,
	// e.g. {"text": "hi"} or {"target": "zendesk", "app_id": "…", "metadata": "…"}.
	// Values are strings, []any or map[string]any of those, so that they
	// compare with values decoded from YAML and print as JSON.
	Fields() map[string]any
	// Execute performs the step's Graph API calls.
	Execute(ctx context.Context, p Platform, to messenger.Recipient) error
	// Effect says what the step does to the thread, for the gateway.
	Effect() Effect
}

// Control is a thread-control change a step makes.
type Control string

// Thread-control changes.
const (
	// ControlNone: the step leaves the thread's ownership alone.
	ControlNone Control = ""
	// ControlPass passes the thread to the app Effect.AppID.
	ControlPass Control = "pass"
	// ControlTake takes the thread for threadgate.
	ControlTake Control = "take"
	// ControlRelease gives the thread up: it goes idle.
	ControlRelease Control = "release"
	// ControlRequest asks the owner to pass the thread to threadgate.
	ControlRequest Control = "request"
)

// Effect is what a step does to the thread, as typed values: the gateway
// and the conversation package read it, never Fields.
type Effect struct {
	// Control is the thread-control change the step makes.
	Control Control
	// Target and AppID name the app a pass hands the thread to: its name
	// in the rules file and its ID.
	Target, AppID string
	// Metadata is the metadata of a pass, take or request.
	Metadata string
	// SendsMessage is true when the step sends exactly one message (a
	// reply or an echo), on which a thread_control can ride.
	SendsMessage bool
}

// Limits of the Messenger Platform that threadgate checks when it loads a
// rules file (literal values) and when it renders a template (the result).
// Lengths count characters (Unicode code points), not bytes.
const (
	MaxTextLen       = 2000 // a message's text
	MaxButtonTextLen = 640  // the text of a button template (a reply with buttons)
	MaxMetadataLen   = 1000 // the metadata of a handover call
	MaxQuickReplies  = 13   // quick replies under one message
	MaxButtons       = 3    // buttons of a button template
	MaxTitleLen      = 20   // the title of a quick reply or a button
	MaxPayloadLen    = 1000 // the payload of a quick reply or a postback button
)

// Compiler is what an action's decoder may use: the file's apps and vars,
// and a template parser with the format's limits (see Compiler.Template).
// A nil *Compiler is valid and knows no apps.
type Compiler struct {
	// Apps maps handover target names to app IDs.
	Apps map[string]string
	// Vars holds the file's vars. When it is non-nil, a template that reads
	// .Vars.NAME for a NAME that is not defined is a load error; when it is
	// nil, any .Vars.NAME is accepted.
	Vars map[string]any
	// At, if set, returns an error positioned at a place inside the value of
	// scalar n (line and col count from 1, col in characters), taking quotes,
	// escapes and block scalars into account; the rules loader sets it
	// because it holds the file's text. When nil, diag.Offset is used.
	At func(n *yaml.Node, line, col int, format string, args ...any) *diag.Error
}

// Spec describes one action kind.
type Spec struct {
	// Name is the action's key in the rules file.
	Name string
	// Doc is one sentence for generated docs and the JSON Schema.
	Doc string
	// ExpectField is the Fields key that a scalar expectation in a rule test
	// compares against (e.g. "text" for reply, "target" for pass_thread_control).
	// It is empty for a kind that takes no scalar expectation.
	ExpectField string
	// FieldNames lists every key that the kind's Step.Fields may return; a
	// rule-test expectation may check only these.
	FieldNames []string
	// Schema is the JSON Schema (draft-07) of the action's value.
	Schema map[string]any
	// Decode compiles the action's YAML value, reporting every mistake.
	Decode func(value *yaml.Node, c *Compiler) (Action, diag.List)
	// DecodeStep reads a step of the kind as EncodeStep recorded it.
	DecodeStep func(data []byte) (Step, error)
}
