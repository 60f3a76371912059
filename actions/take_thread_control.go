package actions

import (
	"context"

	"github.com/threadgate/threadgate/messenger"
)

// take_thread_control: {metadata: TEMPLATE}, {} or nothing.
var takeThreadControl = controlKind{
	name:     "take_thread_control",
	doc:      "Takes the thread back from the app that owns it (threadgate must be the Primary Receiver), with optional metadata (a template).",
	metadata: true,
	control:  ControlTake,
	call: func(ctx context.Context, p Platform, to messenger.Recipient, metadata string) error {
		return p.TakeThreadControl(ctx, to, metadata)
	},
}

var takeThreadControlSpec = takeThreadControl.spec()

// TakeThreadControl returns a step that takes the thread with metadata:
// the step a rule's take_thread_control plans, for the takes threadgate
// makes by itself (handover.return_after_idle).
func TakeThreadControl(metadata string) Step {
	return &controlStep{kind: takeThreadControl, metadata: metadata}
}
