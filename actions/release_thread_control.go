package actions

import (
	"context"

	"github.com/threadgate/threadgate/messenger"
)

// release_thread_control: {} or nothing.
var releaseThreadControl = controlKind{
	name:    "release_thread_control",
	doc:     "Gives the thread up: it goes idle and the Page's default app answers next.",
	control: ControlRelease,
	call: func(ctx context.Context, p Platform, to messenger.Recipient, _ string) error {
		return p.ReleaseThreadControl(ctx, to)
	},
}

var releaseThreadControlSpec = releaseThreadControl.spec()
