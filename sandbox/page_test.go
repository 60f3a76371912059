package sandbox

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

var update = flag.Bool("update", false, "rewrite docs/playground.png from the browser test")

// chromiumPath is Debian's chromium (apt package "chromium").
const chromiumPath = "/usr/bin/chromium"

// screenshotPath is where the playground's screenshot for the docs goes.
const screenshotPath = "../docs/playground.png"

// browser starts a headless chromium for the test, or skips the test when
// chromium is missing outside CI.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the browser test needs chromium at %s (apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("skipping the browser test: no chromium at %s (apt-get install chromium to run it; CI=true makes this a failure)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// page drives the playground in the browser.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v\npage text:\n%s", what, err, p.text())
	}
}

// wait waits until the JavaScript expression is true on the page.
func (p *page) wait(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitLimit)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, p.text())
	}
}

func (p *page) eval(expr string) bool {
	p.t.Helper()
	ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return ok
}

func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return s
}

// js quotes a Go string for JavaScript.
func js(s string) string { return strconv.Quote(s) }

func hasBubble(list, from, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#%s li[data-from=%s] .bubble')].some(n => n.textContent === %s)`, list, from, js(text))
}

// hasBubbleMatching is hasBubble with a JavaScript regular expression for
// the text.
func hasBubbleMatching(list, from, re string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#%s li[data-from=%s] .bubble')].some(n => new RegExp(%s).test(n.textContent))`, list, from, js(re))
}

func hasReport(rules string) string {
	return fmt.Sprintf(`!!document.querySelector('#inspector-log li[data-kind=report][data-rules=%s]')`, js(rules))
}

// hasRuleFired is true when a report lists the rule among those that fired.
func hasRuleFired(rule string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#inspector-log li[data-kind=report]')].some(n => (n.dataset.rules || '').split(' ').includes(%s))`, js(rule))
}

func ownerIsShown(owner string) string {
	return fmt.Sprintf(`document.querySelector('#user-owner .owner-name')?.textContent === %s`, js(owner))
}

func (p *page) userSays(text string) {
	p.t.Helper()
	p.do("typing "+text, chromedp.SendKeys(chromedp.ID("user-input"), text+kb.Enter))
}

func TestPlayground(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/playground.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{rules: data})
	h.applyProfile()
	p := &page{t: t, ctx: browser(t)}
	p.do("opening the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(h.url+"/"), chromedp.WaitVisible(chromedp.ID("user-input")))
	p.wait("the live connection", `document.querySelector('#conn').classList.contains('live')`)
	p.wait("the rules line", fmt.Sprintf(`document.querySelector('#rules-info').textContent.includes(%s)`, js(h.file.Hash[:12])))

	// Every control has a label.
	if !p.eval(`[...document.querySelectorAll('input, select')].every(n => n.labels && n.labels.length > 0)`) {
		t.Errorf("a form control has no label")
	}

	// The welcome screen of a new user: the greeting with the user's name,
	// an ice breaker and the Get Started button.
	p.wait("the welcome screen", `!!document.querySelector('#welcome #get-started') && !!document.querySelector('#welcome .ice button[data-postback=HOURS]')`)
	p.wait("the greeting with the user's name", `/^Hi [^{ ]+! Ask me anything/.test(document.querySelector('#welcome .greeting')?.textContent || '')`)

	// Case 1: the echo.
	p.userSays("hello")
	p.wait("the bot's echo", hasBubble("user-chat", "bot", "[bot] hello"))
	p.wait("the echo rule in the inspector", hasReport("echo"))

	// A quick reply, tapped.
	p.userSays("help")
	p.wait("the quick replies", `!!document.querySelector('#quick-replies button[data-payload=NO_AGENT]')`)
	p.do("tapping a quick reply", chromedp.Click(chromedp.CSS(`#quick-replies button[data-payload=NO_AGENT]`)))
	p.wait("the quick reply's answer", hasBubble("user-chat", "bot", "OK, I'm here if you need me."))
	p.wait("the quick reply in the conversation", hasBubble("user-chat", "user", "No thanks"))
	p.wait("the quick reply's rule", hasReport("no-agent"))
	if p.eval(`!!document.querySelector('#quick-replies button')`) {
		t.Errorf("quick replies still offered after the user answered")
	}

	// A postback button, tapped.
	p.userSays("menu")
	p.do("tapping a button", chromedp.Click(chromedp.CSS(`#user-chat button[data-postback=HOURS]`)))
	p.wait("the button's answer", hasBubble("user-chat", "bot", "We answer Monday to Friday, 9:00 to 18:00."))
	p.wait("the button's rule", hasReport("hours"))

	// Case 2: the handover. The bot stays quiet while zendesk owns the thread.
	p.userSays("chat with agent")
	p.wait("the handover", ownerIsShown("zendesk"))
	p.wait("the bot's announcement", hasBubble("user-chat", "bot", "Connecting you with an agent."))
	p.wait("the handover rule", hasReport("chat-with-agent"))
	p.userSays("anyone there?")
	p.wait("the standby message reported", `[...document.querySelectorAll('#inspector-log li[data-kind=report]')].some(n => n.textContent.includes('No rule fired on message (standby): “anyone there?”'))`)
	if !p.eval(`[...document.querySelectorAll('#user-chat li.msg')].pop().dataset.from === 'user'`) {
		t.Errorf("the bot answered while zendesk owned the thread")
	}
	if !p.eval(`document.querySelector('#owners').textContent.includes('zendesk')`) {
		t.Errorf("the inspector does not show zendesk as the owner")
	}

	// Case 3: the agent replies, then hands the thread back.
	p.wait("the agent app selected", `document.querySelector('#agent-app').value === 'zendesk' && !document.querySelector('#agent-send').disabled`)
	p.do("the agent's reply", chromedp.SendKeys(chromedp.ID("agent-input"), "Hi, Anna here. How can I help?"+kb.Enter))
	p.wait("the agent's reply for the user", hasBubble("user-chat", "agent", "Hi, Anna here. How can I help?"))
	p.wait("the agent's echo on standby", `[...document.querySelectorAll('#inspector-log li[data-kind=webhook]')].some(n => n.textContent.includes('echo on standby → 200'))`)
	p.wait("the user's standby message for the agent", `!!document.querySelector('#agent-chat li.standby')`)
	if *update || os.Getenv("THREADGATE_UPDATE_SCREENSHOT") == "1" {
		p.do("opening the menu for the screenshot", chromedp.Click(chromedp.ID("menu-toggle")))
		p.wait("the open menu", `!document.querySelector('#persistent-menu').hidden`)
		p.screenshot()
		p.do("closing the menu", chromedp.Click(chromedp.ID("menu-toggle")))
	}
	p.do("Done", chromedp.Click(chromedp.ID("agent-done")))
	p.wait("the thread back with the bot", ownerIsShown("bot"))
	p.wait("the bot's welcome back", hasBubble("user-chat", "bot", "You're back with the bot."))
	p.wait("the hand-back rule", hasReport("back-from-agent"))
	p.userSays("hello again")
	p.wait("the bot answering again", hasBubble("user-chat", "bot", "[bot] hello again"))

	// Several users: a new one starts with the bot.
	p.do("a new user", chromedp.Click(chromedp.ID("new-user")))
	p.userSays("hi from user two")
	p.wait("the second user's echo", hasBubble("user-chat", "bot", "[bot] hi from user two"))
	p.wait("two conversations", `document.querySelectorAll('#user-tabs button').length === 2 && document.querySelectorAll('#owners tr').length === 2`)

	// A third user starts from the welcome screen: Get Started, then
	// "Talk to a person" in the persistent menu hands the thread over.
	p.do("a third user", chromedp.Click(chromedp.ID("new-user")))
	p.wait("the welcome screen again", `!!document.querySelector('#welcome #get-started')`)
	p.do("tapping Get Started", chromedp.Click(chromedp.ID("get-started")))
	// The gateway asked the emulated User Profile API: the greeting has
	// the sandbox user's first name, not the template's fallback.
	p.wait("the Get Started answer with the user's name", hasBubbleMatching("user-chat", "bot", `^Hi (?!there,)[^,\s]+, how can I help\?$`))
	p.wait("the get-started rule", hasReport("get-started"))
	p.do("opening the menu", chromedp.Click(chromedp.ID("menu-toggle")))
	p.wait("the menu's items", `!!document.querySelector('#persistent-menu button[data-postback=TALK_TO_AGENT]') && !!document.querySelector('#persistent-menu a[href="https://help.example.com"]')`)
	p.do("tapping Talk to a person", chromedp.Click(chromedp.CSS(`#persistent-menu button[data-postback=TALK_TO_AGENT]`)))
	p.wait("the menu's handover", ownerIsShown("zendesk"))
	p.wait("the agent-button rule", hasReport("agent-button"))
	p.wait("the action described in words", `[...document.querySelectorAll('#inspector-log li[data-rules=agent-button] [data-action=pass_thread_control]')].some(n => n.textContent.startsWith('pass the thread to zendesk'))`)

	// The agent releases the thread: it goes idle.
	p.wait("the Release button", `!document.querySelector('#agent-release').disabled`)
	p.do("Release", chromedp.Click(chromedp.ID("agent-release")))
	p.wait("the idle thread", ownerIsShown("idle (the bot answers next)"))

	// Rich replies: an image and a carousel of cards.
	p.userSays("products")
	p.wait("the image", `!!document.querySelector('#user-chat .media[data-media=image] img')`)
	p.wait("the cards", `document.querySelectorAll('#user-chat .cards .card').length === 3`)

	// Platform echoes are named, not confused with the echo rule.
	if p.eval(`[...document.querySelectorAll('#inspector-log li')].some(n => n.textContent.includes('echo: this kind of event'))`) {
		t.Errorf("the inspector still shows echoes as \"echo: this kind of event …\"")
	}
	if !p.eval(`!!document.querySelector('#inspector-log li.echo')`) {
		t.Errorf("no platform echo is marked in the inspector")
	}
}

// TestPlaygroundPhone opens the playground at a phone's size: the page
// fits its width (no sideways scroll), also with a carousel of cards, and
// the composer's Send button and the menu are on screen.
func TestPlaygroundPhone(t *testing.T) {
	data, err := os.ReadFile("../examples/support-desk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{rules: data})
	h.applyProfile()
	p := &page{t: t, ctx: browser(t)}
	p.do("opening the page on a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(h.url+"/"), chromedp.WaitVisible(chromedp.ID("user-input")))
	p.wait("the live connection", `document.querySelector('#conn').classList.contains('live')`)
	p.wait("the welcome screen", `!!document.querySelector('#welcome #get-started')`)
	p.do("tapping Get Started", chromedp.Click(chromedp.ID("get-started")))
	p.wait("the greeting", hasRuleFired("menu"))
	p.userSays("Where is order #12345? It has been two weeks")
	p.wait("the order rule", hasRuleFired("order-number"))
	p.userSays("hello")
	p.wait("the echo rule", hasRuleFired("echo"))
	// On a phone the layout viewport grows to the content, so the width is
	// compared with the device's 390 px, not with innerWidth.
	const fits = `document.documentElement.scrollWidth <= 390 && document.body.scrollWidth <= 390 && window.innerWidth <= 390`
	if !p.eval(fits) {
		widths, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`'page ' + document.documentElement.scrollWidth + ' px, viewport ' + window.innerWidth + ' px'`))
		t.Errorf("the page does not fit a 390 px phone: %s", widths)
	}
	for _, id := range []string{"user-send", "menu-toggle", "agent-release"} {
		if !p.eval(fmt.Sprintf(`(r => r.left >= 0 && r.right <= 390)(document.getElementById(%s).getBoundingClientRect())`, js(id))) {
			t.Errorf("#%s is cut off at the phone's width", id)
		}
	}
}

// screenshot writes docs/playground.png.
func (p *page) screenshot() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if !strings.HasPrefix(string(png), "\x89PNG") {
		p.t.Fatalf("the screenshot is not a PNG")
	}
	if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(screenshotPath, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("wrote %s (%d bytes)", screenshotPath, len(png))
}
