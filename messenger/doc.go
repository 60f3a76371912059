// Package messenger speaks the Messenger Platform's wire protocol, for
// Facebook Pages and Instagram professional accounts: the webhooks Meta
// sends to threadgate and the Graph API calls threadgate makes back. It
// knows nothing of rules or conversations; the gateway and the actions
// build on it.
//
// # Webhooks
//
// Meta POSTs a JSON body signed with the app secret.
// VerifySignature checks the X-Hub-Signature-256 header (SignatureHeader)
// against the raw body in constant time, under one or more secrets so
// that a rotated secret keeps working; Sign computes the header for tests
// and tools. Decode parses the body into a Webhook, ignoring fields it
// does not know and accepting IDs and timestamps as JSON strings or
// numbers; Webhook.Events flattens its entries into Incoming events, each
// with its Page and whether it came on the standby channel (another app
// owns the thread). Event.Kind says what an event is: a message, an echo
// of the Page's own message, a postback, a handover event such as
// pass_thread_control, and so on.
//
// # Graph API calls
//
// Client makes the calls: the Send API (SendMessage, SendMessageWithControl
// for Conversation Routing's thread_control, SenderAction) and the
// Handover Protocol's edges (PassThreadControl, TakeThreadControl,
// RequestThreadControl, ReleaseThreadControl, ThreadOwner). It picks each
// call's Page access token from a TokenSource (StaticToken for one Page,
// PageTokens or PagesAndDefault for several, loaded with LoadPageTokens),
// adds appsecret_proof (AppSecretProof) when it has the app secret, and
// retries transient failures with capped exponential backoff and full
// jitter. A failure the Graph API reports is a *GraphError with its code,
// subcode and fbtrace_id; GraphError.Retryable and IsNotThreadOwner
// classify it. Options.Observe reports every attempt, for metrics.
//
// # Secrets
//
// Tokens and the app secret never appear in errors, logs or fmt output:
// token sources print as "redacted", URLs in errors lose their query
// string, and an error whose text would hold the token is scrubbed.
package messenger
