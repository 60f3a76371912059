package actions

import (
	"context"

	"github.com/threadgate/threadgate/messenger"
)

// request_thread_control: {metadata: TEMPLATE}, {} or nothing.
var requestThreadControlSpec = controlKind{
	name:     "request_thread_control",
	doc:      "Asks the app that owns the thread to pass it to threadgate, with optional metadata (a template); the owner may ignore it.",
	metadata: true,
	call: func(ctx context.Context, p Platform, to messenger.Recipient, metadata string) error {
		return p.RequestThreadControl(ctx, to, metadata)
	},
}.spec()
