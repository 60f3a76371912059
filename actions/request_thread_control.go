package actions

import (
	"context"

	"github.com/threadgate/threadgate/messenger"
)

// request_thread_control: {metadata: TEMPLATE}, {} or nothing.
var requestThreadControl = controlKind{
	name:     "request_thread_control",
	doc:      "Asks the app that owns the thread to pass it to threadgate, with optional metadata (a template); the owner may ignore it.",
	metadata: true,
	control:  ControlRequest,
	call: func(ctx context.Context, p Platform, to messenger.Recipient, metadata string) error {
		return p.RequestThreadControl(ctx, to, metadata)
	},
}

var requestThreadControlSpec = requestThreadControl.spec()
