package messenger

// Recipient names the person a Graph API call is about: the Page (or
// Instagram account) that owns the conversation and the user's page-scoped ID.
type Recipient struct {
	// PageID is the Page or Instagram professional account ID. It selects the
	// access token when the gateway serves several Pages.
	PageID string
	// UserID is the PSID (Messenger) or IGSID (Instagram) of the user.
	UserID string
}

// Message is the "message" object of a Send API call.
type Message struct {
	Text         string       `json:"text,omitempty"`
	QuickReplies []QuickReply `json:"quick_replies,omitempty"`
	Attachment   *Attachment  `json:"attachment,omitempty"`
	Metadata     string       `json:"metadata,omitempty"`
}

// QuickReply is one quick-reply chip offered under a message.
type QuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title,omitempty"`
	Payload     string `json:"payload,omitempty"`
}

// Attachment is an outbound attachment: a template (Type "template") or a
// media file by URL (Type "image", "video", "audio" or "file").
type Attachment struct {
	Type    string          `json:"type"`
	Payload TemplatePayload `json:"payload"`
}

// TemplatePayload is the payload of an attachment: a button template
// (TemplateType "button": Text and Buttons), a generic template
// (TemplateType "generic": Elements), or a media file (URL).
type TemplatePayload struct {
	TemplateType string    `json:"template_type,omitempty"`
	Text         string    `json:"text,omitempty"`
	Buttons      []Button  `json:"buttons,omitempty"`
	Elements     []Element `json:"elements,omitempty"`
	URL          string    `json:"url,omitempty"`
	IsReusable   bool      `json:"is_reusable,omitempty"`
}

// Element is one card of a generic template.
type Element struct {
	Title         string         `json:"title"`
	Subtitle      string         `json:"subtitle,omitempty"`
	ImageURL      string         `json:"image_url,omitempty"`
	DefaultAction *DefaultAction `json:"default_action,omitempty"`
	Buttons       []Button       `json:"buttons,omitempty"`
}

// DefaultAction is what tapping a card opens: a web_url.
type DefaultAction struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Button is a postback or web_url button of a button template.
type Button struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Sender actions accepted by the Send API.
const (
	TypingOn  = "typing_on"
	TypingOff = "typing_off"
	MarkSeen  = "mark_seen"
)

// Well-known inbox app IDs (Meta's Conversation Routing page): the Page Inbox
// of Meta Business Suite and the Instagram Inbox. Both take a thread by
// themselves when staff answer from them.
const (
	PageInboxAppID      = "263902037430900"
	InstagramInboxAppID = "1217981644879628"
)

// IsInboxApp reports whether an app ID is the Page Inbox or the Instagram Inbox.
func IsInboxApp(id string) bool { return id == PageInboxAppID || id == InstagramInboxAppID }
