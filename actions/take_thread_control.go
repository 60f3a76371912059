package actions

import (
	"context"

	"github.com/threadgate/threadgate/messenger"
)

// take_thread_control: {metadata: TEMPLATE}, {} or nothing.
var takeThreadControlSpec = controlKind{
	name:     "take_thread_control",
	doc:      "Takes the thread back from the app that owns it (threadgate must be the Primary Receiver), with optional metadata (a template).",
	metadata: true,
	call: func(ctx context.Context, p Platform, to messenger.Recipient, metadata string) error {
		return p.TakeThreadControl(ctx, to, metadata)
	},
}.spec()
