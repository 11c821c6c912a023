package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestPlaygroundInBrowser drives the marketer's playground (/ui/) in a
// headless Chromium against the real binary: sign in, decide for a demo
// customer and read the explanation, change the decision with a what-if
// time and a what-if refusal of consent, break a rule file in the Drafts editor and see the error at its
// line, then replay a real change on logged decisions.
func TestPlaygroundInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	dir := workspace(t)
	logPath := filepath.Join(dir, "decisions.jsonl")
	s := startServer(t, dir, "--config", writeConfig(t, dir, "decision_log:\n  enabled: true\n  file:\n    path: "+logPath+"\n"))
	shots := screenshotDir(t)

	b := newBrowser(t, chromium, shots)

	// (a) Sign in through the form; a wrong key is refused first.
	b.do("open the playground", chromedp.Navigate(s.base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-key")))
	b.do("type a wrong key", chromedp.SendKeys(chromedp.CSS("#login-key"), "not-the-key"), chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitJS("the refusal", `document.querySelector('#login-error').textContent.includes('That key was not accepted')`)
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#login-key"), adminKey), chromedp.Click(chromedp.CSS("#login-submit")))
	b.do("the app", chromedp.WaitVisible(chromedp.CSS("#shell")), chromedp.WaitVisible(chromedp.CSS("#pl-cart_banner")))
	if v := b.str(`document.querySelector('#version-text').textContent`); v != s.status(t).Version {
		t.Errorf("version badge = %q, want the live ruleset %q", v, s.status(t).Version)
	}

	// (b) Mei on /cart: the coupon, and why the shipping nudge did not match.
	b.do("look up Mei", chromedp.SendKeys(chromedp.CSS("#customer-id"), "c-000042"), chromedp.Click(chromedp.CSS("#customer-lookup")))
	b.waitJS("Mei's summary", `(document.querySelector('#customer-summary .summary-title') || {}).textContent?.includes('Mei')`)
	b.setField("#ctx-channel", "web")
	b.setField("#ctx-page", "/cart")
	b.setField("#ctx-device", "mobile")
	b.setChecked("#pl-cart_banner", true)
	b.do("decide", chromedp.Click(chromedp.CSS("#decide-btn")))
	b.do("the coupon card", chromedp.WaitVisible(chromedp.CSS(`#results .tp-card[data-touchpoint="cart_coupon_10"]`)))
	// The trace is drawn again once the rules index (with the tests per
	// rule) has arrived; wait for that before clicking in it.
	b.waitJS("the tests per rule", `!!document.querySelector('#rules-table tr[data-rule="cart_abandon_coupon"] .fixtures')`)
	if got := b.str(`document.querySelector('#results .tp-card[data-touchpoint="cart_coupon_10"] .coupon-code').textContent`); got != "CART10" {
		t.Errorf("coupon code on the card = %q, want CART10", got)
	}
	if got := b.str(`document.querySelector('#rules-table tr[data-rule="cart_abandon_coupon"] .outcome').textContent`); got != "matched" {
		t.Errorf("cart_abandon_coupon outcome = %q, want matched", got)
	}
	b.do("open Why not? for cart_shipping_nudge", chromedp.Click(chromedp.CSS(`#rules-table tr[data-rule="cart_shipping_nudge"] .why-btn`)))
	const term = `#why-cart_shipping_nudge li.term[data-term="customer.cart_value < 60"]`
	b.do("the failed term", chromedp.WaitVisible(chromedp.CSS(term)))
	if got := b.str(`document.querySelector('` + term + ` .term-value').textContent`); got != "false" {
		t.Errorf("customer.cart_value < 60 shows %q, want false", got)
	}
	if got := b.str(`document.querySelector('#why-cart_shipping_nudge .terms-op').textContent`); got != "All of (and)" {
		t.Errorf("the condition's operator reads %q", got)
	}
	// The chosen candidate is listed; candidates for other placements are
	// hidden by default.
	if !b.bool(`!!document.querySelector('#candidates-table tr.is-chosen[data-touchpoint="cart_coupon_10"]:not([hidden])')`) {
		t.Error("the chosen cart_coupon_10 is not in the candidates table")
	}
	if b.bool(`[...document.querySelectorAll('#candidates-table tr[data-reason="placement_mismatch"]')].some(tr => !tr.hidden)`) {
		t.Error("placement_mismatch candidates are shown by default")
	}
	// So are rules that offer only for placements not asked for; rules
	// that suppress stay, since they can hold anything back.
	if !b.bool(`document.querySelector('#rules-table tr[data-rule="recs_sport"]').hidden`) {
		t.Error("recs_sport (product_recs only) is shown for a home_hero and cart_banner decision")
	}
	if b.bool(`document.querySelector('#rules-table tr[data-rule="coupon_fatigue"]').hidden`) {
		t.Error("the suppress rule coupon_fatigue is hidden")
	}
	b.screenshot("decide")

	// (c) What-if time: Hannah's points reminder goes out by SMS at 10:00
	// Berlin time and is held back by quiet hours at 23:30. The browser's
	// clock is in Berlin, so "Decide as if at" is read as Berlin time.
	b.setField("#customer-id", "")
	b.do("look up Hannah", chromedp.SendKeys(chromedp.CSS("#customer-id"), "c-002026"), chromedp.Click(chromedp.CSS("#customer-lookup")))
	b.waitJS("Hannah's summary", `(document.querySelector('#customer-summary .summary-title') || {}).textContent?.includes('Hannah')`)
	b.setField("#ctx-channel", "sms")
	b.setField("#ctx-page", "")
	b.setField("#ctx-device", "")
	b.setChecked("#pl-cart_banner", false)
	b.setChecked("#pl-home_hero", false)
	b.setChecked("#pl-sms_text", true)
	b.setField("#whatif-now", "2026-12-02T10:00")
	b.do("decide at 10:00", chromedp.Click(chromedp.CSS("#decide-btn")))
	b.do("the SMS reminder", chromedp.WaitVisible(chromedp.CSS(`#results .tp-card[data-touchpoint="sms_points_expiry"]`)))
	b.setField("#whatif-now", "2026-12-02T23:30")
	b.do("decide at 23:30", chromedp.Click(chromedp.CSS("#decide-btn")))
	b.do("an empty sms_text", chromedp.WaitVisible(chromedp.CSS(`#results [data-empty="sms_text"]`)))
	if b.bool(`!!document.querySelector('#results .tp-card')`) {
		t.Error("at 23:30 Berlin time something is still shown in sms_text")
	}
	if flags := b.str(`document.querySelector('#results .flags').textContent`); !strings.Contains(flags, "2026-12-02T22:30:00Z") {
		t.Errorf("23:30 in Berlin should be sent as 22:30 UTC; the result says %q", flags)
	}

	// (c2) What-if consent: Mei's abandoned-cart email goes out, and is
	// held back once the preview says she refused email.
	b.setField("#whatif-now", "")
	b.setField("#customer-id", "")
	b.do("look up Mei again", chromedp.SendKeys(chromedp.CSS("#customer-id"), "c-000042"), chromedp.Click(chromedp.CSS("#customer-lookup")))
	b.waitJS("Mei's summary again", `(document.querySelector('#customer-summary .summary-title') || {}).textContent?.includes('Mei')`)
	b.setField("#ctx-channel", "email")
	b.setChecked("#pl-sms_text", false)
	b.setChecked("#pl-email_slot", true)
	b.do("decide by email", chromedp.Click(chromedp.CSS("#decide-btn")))
	b.do("the cart reminder", chromedp.WaitVisible(chromedp.CSS(`#results .tp-card[data-touchpoint="email_cart_reminder"]`)))
	b.do("refuse email", chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-consent="email"] input[value="denied"]').click()`))
	b.do("decide without email consent", chromedp.Click(chromedp.CSS("#decide-btn")))
	b.do("an empty email_slot", chromedp.WaitVisible(chromedp.CSS(`#results [data-empty="email_slot"]`)))
	b.do("back to the stored consent", chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-consent="email"] input[value="stored"]').click()`))

	// (d) Drafts: break a condition in cart.yaml and find the error at its line.
	live := s.ruleFile(t, "cart.yaml")
	const cond = "customer.cart_value < 60"
	at := strings.Index(live, cond)
	if at < 0 {
		t.Fatalf("cart.yaml has no %q any more; pick another edit", cond)
	}
	line := strings.Count(live[:at], "\n") + 1
	b.do("open Drafts", chromedp.Click(chromedp.CSS("#tab-btn-drafts")))
	// The tab opens a first file by itself; let it, then choose cart.yaml.
	b.waitJS("the editor", `window.__touchpoint_editor && document.querySelector('#editor-path').textContent !== 'No file open'`)
	b.do("open cart.yaml", chromedp.Click(chromedp.CSS(`#file-list [data-path="cart.yaml"]`)))
	b.waitJS("cart.yaml in the editor", `window.__touchpoint_editor && document.querySelector('#editor-path').textContent === 'cart.yaml' && window.__touchpoint_editor.getText() === `+jsString(live))
	b.setEditorText(strings.Replace(live, cond, "customer.cart_valeu < 60", 1))
	b.do("the modified mark", chromedp.WaitVisible(chromedp.CSS(`#file-list [data-path="cart.yaml"] .mod-dot-wrap`)))
	b.do("check", chromedp.Click(chromedp.CSS("#check-btn")))
	b.do("the error list", chromedp.WaitVisible(chromedp.CSS("#check-errors")))
	if errs := b.str(`document.querySelector('#check-errors').textContent`); !strings.Contains(errs, "cart.yaml:"+strconv.Itoa(line)+":") || !strings.Contains(errs, "cart_valeu") {
		t.Errorf("the error list should report cart.yaml:%d: about cart_valeu; it says %q", line, errs)
	}
	b.do("go to the error", chromedp.Click(chromedp.CSS("#check-errors .problem")))
	b.do("the marked line", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`.cm-error-line[data-line="%d"]`, line))))
	b.screenshot("drafts-check")

	// (e) Replay: real decisions on /cart fill the decision log (the
	// playground's own decisions are previews and are not logged); then a
	// draft that raises the coupon's threshold above Mei's 0.40 changes
	// her cart banner.
	customers := []string{"c-000042", "c-000256", "c-000314", "c-000101"}
	for i := 0; i < 20; i++ {
		body := fmt.Sprintf(`{"customer_id":%q,"placements":[{"id":"cart_banner","count":1}],"context":{"channel":"web","page":"/cart","device":"mobile"}}`, customers[i%len(customers)])
		if code, _, raw, err := s.decide(body); err != nil || code != 200 {
			t.Fatalf("decide: %d %v %s", code, err, raw)
		}
	}
	waitLong(t, "20 decisions in the log", func() bool { return countLines(logPath) >= 20 })
	const threshold = `model("coupon_response") >= 0.2`
	if !strings.Contains(live, threshold) {
		t.Fatalf("cart.yaml has no %q any more; pick another change", threshold)
	}
	b.setEditorText(strings.Replace(live, threshold, `model("coupon_response") >= 0.5`, 1))
	b.do("replay", chromedp.Click(chromedp.CSS("#replay-btn")))
	b.do("the replay report", chromedp.WaitVisible(chromedp.CSS(`#replay-placements tr[data-placement="cart_banner"]`)))
	if n, _ := strconv.Atoi(b.str(`document.querySelector('#replay-placements tr[data-placement="cart_banner"]').dataset.changed`)); n < 5 {
		t.Errorf("replay shows %d changed cart_banner decisions, want Mei's 5 at least", n)
	}
	if head := b.str(`document.querySelector('#replay-headline').textContent`); !strings.Contains(head, "would change") || strings.HasPrefix(head, "0%") {
		t.Errorf("replay headline = %q", head)
	}
	b.do("open the examples", chromedp.Click(chromedp.CSS(`#replay-placements tr[data-placement="cart_banner"] button`)))
	b.do("the examples", chromedp.WaitVisible(chromedp.CSS("#replay-ex-cart_banner")))
	if ex := b.str(`document.querySelector('#replay-ex-cart_banner').textContent`); !strings.Contains(ex, "c-000042") || !strings.Contains(ex, "cart_coupon_10") {
		t.Errorf("the examples should show Mei losing cart_coupon_10: %q", ex)
	}
	if got := s.status(t).Version; got != b.str(`document.querySelector('#version-text').textContent`) {
		t.Errorf("the live ruleset changed to %s: drafts must never be published", got)
	}
	b.screenshot("drafts-replay")

	// Download hands the draft over as a file, to commit.
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	b.do("download the draft", chromedp.Click(chromedp.CSS("#download-btn")))
	want := b.str(`window.__touchpoint_editor.getText()`)
	waitLong(t, "the downloaded cart.yaml", func() bool {
		got, err := os.ReadFile(filepath.Join(downloads, "cart.yaml"))
		return err == nil && string(got) == want
	})

	// Logging out asks before it throws the draft away, then forgets the
	// key and the drafts.
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	asked := make(chan string, 1)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			asked <- ev.Message
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			return
		}
	}()
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")))
	select {
	case msg := <-asked:
		if !strings.Contains(msg, "draft") {
			t.Errorf("logging out asked %q", msg)
		}
	case <-b.ctx.Done():
		b.fail("the question before logging out", b.ctx.Err())
	}
	b.do("the sign-in form", chromedp.WaitVisible(chromedp.CSS("#login-key")))
	if b.bool(`!!sessionStorage.getItem('touchpoint.adminKey') || !!sessionStorage.getItem('touchpoint.drafts')`) {
		t.Error("the admin key or the drafts are still in sessionStorage after logging out")
	}
	b.checkConsole()
}

// chromiumPath finds Chromium, or skips: the browser test needs a real
// browser. CI must run it, so there a missing browser fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "Chromium is not installed (no /usr/bin/chromium, no chromium on PATH); install it with `apt-get install chromium`"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must not skip the browser test")
	}
	t.Skip(msg)
	return ""
}

// screenshotDir is where the test leaves its screenshots: the directory
// TOUCHPOINT_UI_SCREENSHOTS names, to look at them, else a temporary one.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TOUCHPOINT_UI_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (s *process) ruleFile(t *testing.T, path string) string {
	t.Helper()
	code, out := s.call(t, "GET", "/admin/rules/file?path="+path, "", true)
	var f struct{ Content string }
	if code != 200 || json.Unmarshal([]byte(out), &f) != nil {
		t.Fatalf("GET /admin/rules/file?path=%s: %d %s", path, code, out)
	}
	return f.Content
}

// browser is one headless Chromium tab, with what the page wrote to its
// console.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// The whole scenario gets this long; the machine may be small and busy,
// so each wait is on a condition, never a fixed sleep.
const browserTimeout = 90 * time.Second

func newBrowser(t *testing.T, execPath, shots string) *browser {
	t.Helper()
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1400, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	// Start the browser on a context without the deadline: the deadline
	// below then ends the waits, not the browser under them.
	if err := chromedp.Do(tabCtx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("cannot start %s: %v", execPath, err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, browserTimeout)
	b := &browser{t: t, ctx: ctx, shots: shots}
	// Registered after t.TempDir, so this runs first: the browser is gone
	// before its profile directory is removed.
	t.Cleanup(func() {
		cancel()
		_ = chromedp.Cancel(tabCtx) // closes the browser
		cancelTab()
		cancelAlloc()
		waitProfileFree(profile)
	})
	// Times typed into the what-if field are Berlin times, whatever the
	// machine's zone.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Europe/Berlin"}); err != nil {
		t.Fatalf("set the browser's time zone: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// waitProfileFree waits until no process of the closed browser still
// uses its profile directory, so removing it cannot race a late write.
func waitProfileFree(profile string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), profile) {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do runs actions; on failure it saves a screenshot of the page and stops
// the test, naming the step.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

func (b *browser) fail(step string, err error) {
	b.t.Helper()
	shot := b.failureScreenshot(step)
	b.mu.Lock()
	var console []string
	for _, m := range b.console {
		console = append(console, m.String())
	}
	b.mu.Unlock()
	b.t.Fatalf("%s: %v\nscreenshot: %s\nconsole:\n%s", step, err, shot, strings.Join(console, "\n"))
}

func (b *browser) failureScreenshot(step string) string {
	// The main context may be what ran out; the screenshot gets its own time.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "none (" + err.Error() + ")"
	}
	name := filepath.Join(b.shots, "failed-"+strings.NewReplacer(" ", "-", "/", "-", "?", "").Replace(step)+".png")
	if err := os.WriteFile(name, buf, 0o644); err != nil {
		return "none (" + err.Error() + ")"
	}
	return name
}

// waitJS waits until the JavaScript expression is truthy.
func (b *browser) waitJS(step, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(0), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		b.fail("wait for "+step, err)
	}
}

func (b *browser) str(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

func (b *browser) bool(expr string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

// setField sets an input's or select's value the way typing or choosing
// would, with the input and change events the page listens to.
func (b *browser) setField(sel, value string) {
	b.t.Helper()
	b.do("set "+sel, chromedp.Evaluate[chromedp.Void](`(() => {
		const el = document.querySelector(`+jsString(sel)+`);
		if (!el) throw new Error('no element ' + `+jsString(sel)+`);
		el.value = `+jsString(value)+`;
		el.dispatchEvent(new Event('input', { bubbles: true }));
		el.dispatchEvent(new Event('change', { bubbles: true }));
	})()`))
}

// setChecked clicks a checkbox when it is not in the wanted state.
func (b *browser) setChecked(sel string, want bool) {
	b.t.Helper()
	if b.bool(`document.querySelector(`+jsString(sel)+`).checked`) != want {
		b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
	}
	if b.bool(`document.querySelector(`+jsString(sel)+`).checked`) != want {
		b.t.Fatalf("%s did not turn %v", sel, want)
	}
}

// setEditorText replaces the Drafts editor's text through the editor's
// API, which the page exposes for this test: typing a whole file into a
// contenteditable key by key would be slow and test the browser more than
// the playground.
func (b *browser) setEditorText(text string) {
	b.t.Helper()
	b.do("set the editor's text", chromedp.Evaluate[chromedp.Void](`window.__touchpoint_editor.setText(`+jsString(text)+`)`))
	b.waitJS("the edited text", `window.__touchpoint_editor.getText() === `+jsString(text))
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	// Sticky parts (the top bar) are drawn where the page is scrolled to,
	// so the whole page is taken from its top.
	b.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// checkConsole fails the test for an uncaught exception or a
// Content-Security-Policy violation in the page: either means a part of the
// playground silently did not work.
func (b *browser) checkConsole() {
	b.t.Helper()
	// Messages travel from the browser on their own; a round trip through
	// the page lets those of the last step arrive.
	b.str(`'flush'`)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
			b.t.Errorf("page console: %s (%s:%d)", m, m.URL, m.Line+1)
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
