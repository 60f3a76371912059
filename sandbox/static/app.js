// The threadgate sandbox playground: a user's Messenger chat, the agent app
// on the other side of the handover, and an inspector. It reads
// /sandbox/api/state once, then applies the changes pushed on
// /sandbox/api/events (Server-Sent Events). No framework, no build step.
'use strict';

const API = '/sandbox/api';
let state = null;        // the last State from the server, kept up to date
let loading = false;
let buffered = [];       // changes that arrived while the state was loading
let selected = null;     // PSID of the conversation on screen
let pending = [];        // PSIDs opened with "New user" that have no message yet
let agentChoice = null;  // the agent app chosen by hand, if any
let renderQueued = false;
let menuOpen = false;     // the persistent menu is open
const names = new Map();  // PSID → the user's name, for the welcome screen
const logNodes = new Map(); // log entry seq → {key, node}

const $ = (id) => document.getElementById(id);

// el builds an element: el('li', {class: 'x', onclick: f}, 'text', child…).
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'class') n.className = v;
    else n.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    n.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return n;
}

async function post(path, body) {
  const r = await fetch(API + path, {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
  });
  let data = {};
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const wh = data.webhook ? ` (gateway answered ${data.webhook.status || data.webhook.error})` : '';
    throw new Error((data.error || `HTTP ${r.status}`) + wh);
  }
  return data;
}

function status(id, text, isError) {
  const n = $(id);
  n.textContent = text;
  n.classList.toggle('error', !!isError);
}

// ---- loading and live updates ----

async function load() {
  loading = true;
  try {
    const r = await fetch(API + '/state');
    state = await r.json();
  } finally {
    loading = false;
  }
  const later = buffered;
  buffered = [];
  later.forEach(apply);
  logNodes.clear();
  $('inspector-log').replaceChildren();
  render();
}

function apply(c) {
  if (!state || loading) { buffered.push(c); return; }
  if (c.seq <= state.seq) return;
  state.seq = c.seq;
  if (c.thread) {
    const i = state.threads.findIndex((t) => t.user === c.thread.user);
    if (i >= 0) state.threads[i] = c.thread; else state.threads.push(c.thread);
  }
  if (c.log) {
    const i = state.log.findIndex((l) => l.seq === c.log.seq);
    if (i >= 0) state.log[i] = c.log; else state.log.push(c.log);
    if (state.log.length > 500) state.log.splice(0, state.log.length - 500);
  }
  if ('rules' in c) state.rules = c.rules;
  if (c.profile) state.profile = c.profile;
  queueRender();
}

function connect() {
  const es = new EventSource(API + '/events');
  es.addEventListener('hello', () => { setConn(true); load(); });
  es.addEventListener('change', (ev) => apply(JSON.parse(ev.data)));
  es.onerror = () => setConn(false);
}

function setConn(live) {
  const n = $('conn');
  n.textContent = live ? 'live' : 'reconnecting…';
  n.className = 'conn ' + (live ? 'live' : 'down');
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => { renderQueued = false; render(); }, 0);
}

// ---- helpers on the state ----

function threadOf(user) { return state && state.threads.find((t) => t.user === user); }

function users() {
  const list = state ? state.threads.map((t) => t.user) : [];
  for (const p of pending) if (!list.includes(p)) list.push(p);
  return list;
}

function ownerOf(t) { return t ? t.owner : 'bot'; }

function agentApp() {
  const names = state ? state.apps.map((a) => a.name) : [];
  if (agentChoice && names.includes(agentChoice)) return agentChoice;
  const owner = ownerOf(threadOf(selected));
  if (names.includes(owner)) return owner;
  return names.includes('zendesk') ? 'zendesk' : names[0];
}

function newPSID() {
  return String(2400000000000000 + Math.floor(Math.random() * 1e12));
}

function fmtTime(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], {hour12: false}) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

// ---- rendering ----

function render() {
  if (!state) return;
  if (!selected) {
    selected = users()[0] || null;
    if (!selected) { selected = newPSID(); pending.push(selected); }
  }
  renderRules();
  renderTabs();
  renderUser();
  renderAgent();
  renderOwners();
  renderLog();
}

function renderRules() {
  const n = $('rules-info');
  const r = state.rules;
  if (r === undefined || r === null) { n.textContent = 'Rules: (no information)'; return; }
  if (typeof r !== 'object') { n.textContent = 'Rules: ' + r; return; }
  let bad = false;
  const parts = [];
  for (const [k, v] of Object.entries(r)) {
    if (v === '' || v === null || v === undefined) continue;
    let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
    if (/hash/i.test(k) && s.length > 12) s = s.slice(0, 12);
    if (/error/i.test(k)) bad = true;
    parts.push(`${k}: ${s}`);
  }
  n.textContent = 'Rules — ' + (parts.join(' · ') || 'loaded');
  n.classList.toggle('error', bad);
}

function renderTabs() {
  const tabs = users().map((u) => el('button', {
    type: 'button', 'aria-pressed': u === selected ? 'true' : 'false', 'data-user': u,
    title: 'PSID ' + u, onclick: () => { selected = u; agentChoice = null; render(); },
  }, 'User …' + u.slice(-4)));
  $('user-tabs').replaceChildren(...tabs);
}

function ownerText(owner) {
  return owner === 'idle' ? 'idle (the bot answers next)' : owner;
}

// localized picks the entry of a profile list for the sandbox user's
// locale (en_US), else the default one.
function localized(list) {
  if (!list || !list.length) return null;
  return list.find((x) => x.locale === 'en_US') || list.find((x) => x.locale === 'default') || list[0];
}

function profile() { return (state && state.profile) || {}; }

// userName returns the user's name: the thread's, else fetched once.
function userName(user) {
  const t = threadOf(user);
  if (t && t.name) return t.name;
  if (!names.has(user)) {
    names.set(user, '');
    fetch(`${API}/users/${encodeURIComponent(user)}`).then((r) => r.json())
      .then((u) => { names.set(user, `${u.first_name} ${u.last_name}`); queueRender(); })
      .catch(() => {});
  }
  return names.get(user);
}

// personalize fills in the greeting's {{user_first_name}},
// {{user_last_name}} and {{user_full_name}} as Messenger does.
function personalize(text, full) {
  const [first, ...rest] = (full || '').split(' ');
  return text.replaceAll('{{user_first_name}}', first || '')
    .replaceAll('{{user_last_name}}', rest.join(' '))
    .replaceAll('{{user_full_name}}', full || '');
}

// welcome is the welcome screen of a user who has not written yet: the
// greeting, the ice breakers and the Get Started button.
function welcome() {
  const p = profile();
  const greeting = localized(p.greeting);
  const ice = localized(p.ice_breakers);
  if (!greeting && !p.get_started && !ice) return null;
  return el('li', {class: 'welcome', id: 'welcome'},
    el('div', {class: 'page-name'}, 'Your Page'),
    greeting ? el('p', {class: 'greeting'}, personalize(greeting.text, userName(selected))) : null,
    ice && ice.call_to_actions ? el('div', {class: 'ice', role: 'group', 'aria-label': 'Ice breakers'},
      ice.call_to_actions.map((q) => el('button', {type: 'button', 'data-postback': q.payload,
        onclick: () => tapButton({payload: q.payload, title: q.question})}, q.question))) : null,
    p.get_started ? el('button', {type: 'button', id: 'get-started', 'data-postback': p.get_started.payload,
      onclick: () => tapButton({payload: p.get_started.payload, title: 'Get Started'})}, 'Get Started') : null);
}

// renderMenu shows the ☰ button when the Page has a persistent menu (the
// platform shows it only with a Get Started button), and the open menu.
function renderMenu() {
  const p = profile();
  const menu = p.get_started ? localized(p.persistent_menu) : null;
  const items = menu && menu.call_to_actions ? menu.call_to_actions : [];
  const toggle = $('menu-toggle');
  toggle.hidden = items.length === 0;
  if (!items.length) menuOpen = false;
  toggle.setAttribute('aria-expanded', menuOpen ? 'true' : 'false');
  const box = $('persistent-menu');
  box.hidden = !menuOpen;
  box.replaceChildren(...items.map((it) => it.type === 'web_url'
    ? el('a', {role: 'menuitem', href: it.url, target: '_blank', rel: 'noopener noreferrer'}, it.title + ' ↗')
    : el('button', {type: 'button', role: 'menuitem', 'data-postback': it.payload,
      onclick: () => { menuOpen = false; tapButton({payload: it.payload, title: it.title}); renderMenu(); }}, it.title)));
  const disabled = !!(menu && menu.composer_input_disabled);
  $('user-input').disabled = disabled;
  $('user-send').disabled = disabled;
  $('user-input').placeholder = disabled ? 'This Page only takes the menu' : 'Try: hello, or chat with agent';
}

// richContent renders a message's media or cards.
function richContent(it) {
  const out = [];
  if (it.media) {
    const m = it.media;
    let node;
    if (m.type === 'image') node = el('img', {src: m.url, alt: 'image from the bot', loading: 'lazy'});
    else if (m.type === 'video') node = el('video', {src: m.url, controls: true, preload: 'none'});
    else if (m.type === 'audio') node = el('audio', {src: m.url, controls: true, preload: 'none'});
    else node = el('a', {class: 'file', href: m.url, target: '_blank', rel: 'noopener noreferrer'}, '📎 ' + (m.url.split('/').pop() || 'file'));
    out.push(el('div', {class: 'media', 'data-media': m.type}, node));
  }
  if (it.cards) {
    out.push(el('div', {class: 'cards', role: 'group', 'aria-label': `${it.cards.length} card(s)`}, it.cards.map((c) =>
      el('div', {class: 'card'},
        c.image_url ? el('img', {src: c.image_url, alt: '', loading: 'lazy'}) : null,
        c.url ? el('a', {class: 'title', href: c.url, target: '_blank', rel: 'noopener noreferrer'}, c.title) : el('div', {class: 'title'}, c.title),
        c.subtitle ? el('div', {class: 'subtitle'}, c.subtitle) : null,
        c.buttons ? el('div', {class: 'buttons'}, c.buttons.map(buttonFor)) : null))));
  }
  return out;
}

// itemText is a one-line description of a message for the agent's view.
function itemText(it) {
  if (it.text) return it.text;
  if (it.media) return `[${it.media.type}: ${it.media.url}]`;
  if (it.cards) return `[${it.cards.length} card(s): ${it.cards.map((c) => c.title).join(', ')}]`;
  return '[template]';
}

function renderUser() {
  const t = threadOf(selected);
  const items = t ? t.items : [];
  $('user-owner').replaceChildren('PSID ', el('strong', {}, selected), ' · thread owner: ',
    el('strong', {class: 'owner-name'}, ownerText(ownerOf(t))));
  const chat = $('user-chat');
  const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 30;
  const lastUser = [...items].reverse().find((it) => it.from === 'user');
  const rows = [];
  if (!items.some((it) => it.from === 'user')) {
    const w = welcome();
    if (w) rows.push(w);
  }
  for (const it of items) {
    if (it.from === 'system') { rows.push(el('li', {class: 'note'}, it.text)); continue; }
    if (it.from === 'user') {
      rows.push(el('li', {class: 'msg mine', 'data-from': 'user'}, el('div', {class: 'bubble'}, it.text)));
      if (it === lastUser && t.seen && new Date(t.seen) >= new Date(it.time)) rows.push(el('li', {class: 'seen'}, 'Seen'));
      continue;
    }
    const who = it.from === 'bot' ? 'bot' : `${it.app} (agent)`;
    rows.push(el('li', {class: 'msg theirs' + (it.from === 'agent' ? ' agent' : '') + (it.cards ? ' has-cards' : ''), 'data-from': it.from},
      el('span', {class: 'who'}, who),
      it.text ? el('div', {class: 'bubble'}, it.text) : null,
      richContent(it),
      it.buttons ? el('div', {class: 'buttons'}, it.buttons.map(buttonFor)) : null));
  }
  chat.replaceChildren(...rows);
  if (atBottom || rows.length < 3) chat.scrollTop = chat.scrollHeight;

  renderMenu();

  const typing = t && t.typing;
  $('user-typing').hidden = !typing;
  $('user-typing-who').textContent = typing || '';

  const last = [...items].reverse().find((it) => it.from !== 'system');
  const chips = last && last.from !== 'user' && last.quick_replies ? last.quick_replies : [];
  const focused = document.activeElement && document.activeElement.dataset.payload;
  $('quick-replies').replaceChildren(...chips.map((q) => el('button', {
    type: 'button', 'data-payload': q.payload, onclick: () => tapQuickReply(q),
  }, q.title)));
  if (focused) {
    const again = [...$('quick-replies').children].find((b) => b.dataset.payload === focused);
    if (again) again.focus();
  }
}

function buttonFor(b) {
  if (b.type === 'web_url') return el('a', {href: b.url, target: '_blank', rel: 'noopener noreferrer'}, b.title + ' ↗');
  return el('button', {type: 'button', 'data-postback': b.payload, onclick: () => tapButton(b)}, b.title);
}

function renderAgent() {
  const t = threadOf(selected);
  const owner = ownerOf(t);
  const app = agentApp();
  const sel = $('agent-app');
  const opts = state.apps.map((a) => el('option', {value: a.name, selected: a.name === app}, `${a.name} (${a.id})`));
  if (sel.options.length !== opts.length || [...sel.options].some((o, i) => o.value !== state.apps[i].name)) {
    sel.replaceChildren(...opts);
  }
  sel.value = app;

  let line;
  if (!t) line = 'No conversation yet: write as the user first.';
  else if (owner === app) line = `${app} owns this thread: reply, then click Done to give it back to the bot.`;
  else if (owner === 'bot') line = `The bot owns this thread; ${app} only watches. Take it, or ask for it.`;
  else if (owner === 'idle') line = 'The thread is idle: the bot (the default app) answers the next message.';
  else line = `${owner} owns this thread.`;
  $('agent-owner').textContent = line;

  const items = t ? t.items : [];
  const rows = items.map((it) => {
    if (it.from === 'system') return el('li', {class: 'note'}, it.text);
    const mine = it.from === 'agent' && it.app === app;
    const who = it.from === 'user' ? 'user' + (it.channel === 'standby' ? '' : '') : it.from === 'bot' ? 'bot' : `${it.app} (agent)`;
    return el('li', {class: 'msg ' + (mine ? 'mine' : 'theirs') + (it.from === 'agent' && !mine ? ' agent' : '') +
      (it.from === 'user' && it.channel === 'standby' ? ' standby' : ''), 'data-from': it.from},
    el('span', {class: 'who'}, who), el('div', {class: 'bubble'}, itemText(it)));
  });
  const chat = $('agent-chat');
  chat.replaceChildren(...rows);
  chat.scrollTop = chat.scrollHeight;

  const owns = !!t && owner === app;
  const canReply = owns || (!!t && app === 'page_inbox');
  $('agent-input-label').textContent = `Reply as ${app}`;
  $('agent-input').disabled = !canReply;
  $('agent-send').disabled = !canReply;
  $('agent-done').disabled = !owns;
  $('agent-take').disabled = !t || owns;
  $('agent-request').disabled = !t || owns;
  $('agent-release').disabled = !owns;
}

function renderOwners() {
  const rows = state.threads.map((t) => {
    const cls = t.owner === 'bot' ? 'owner-bot' : t.owner === 'idle' ? 'owner-idle' : 'owner-agent';
    return el('tr', {'data-user': t.user},
      el('td', {}, el('button', {type: 'button', class: 'ghost', onclick: () => { selected = t.user; render(); }}, '…' + t.user.slice(-4))),
      el('td', {class: cls}, t.owner));
  });
  if (rows.length === 0) rows.push(el('tr', {}, el('td', {colspan: 2}, 'No conversation yet.')));
  $('owners').replaceChildren(...rows);
}

function renderLog() {
  const only = $('only-user').checked;
  const list = $('inspector-log');
  const wanted = state.log.filter((l) => !only || l.user === selected).reverse();
  const keep = new Set(wanted.map((l) => l.seq));
  for (const [seq, v] of logNodes) if (!keep.has(seq)) { v.node.remove(); logNodes.delete(seq); }
  let prev = null;
  for (const l of wanted) {
    const key = JSON.stringify([l.summary, l.error, l.webhook && l.webhook.status, l.graph && l.graph.status]);
    let v = logNodes.get(l.seq);
    if (!v || v.key !== key) {
      const node = logEntry(l);
      if (v) {
        v.node.querySelectorAll('details').forEach((d, i) => {
          const nd = node.querySelectorAll('details')[i];
          if (nd) nd.open = d.open;
        });
        v.node.replaceWith(node);
      }
      v = {key, node};
      logNodes.set(l.seq, v);
    }
    const want = prev ? prev.nextSibling : list.firstChild;
    if (v.node !== want) list.insertBefore(v.node, want);
    prev = v.node;
  }
}

function pretty(raw) {
  try { return JSON.stringify(typeof raw === 'string' ? JSON.parse(raw) : raw, null, 2); } catch (_) { return String(raw); }
}

function logEntry(l) {
  const head = el('div', {class: 'head'},
    el('time', {datetime: l.time}, fmtTime(l.time)),
    el('span', {class: 'kind kind-' + l.kind}, l.kind),
    l.user ? el('span', {class: 'who', title: 'PSID ' + l.user}, '…' + l.user.slice(-4)) : null,
    el('span', {class: 'summary'}, l.summary));
  const body = [];
  if (l.error) body.push(el('div', {class: 'err'}, l.error));
  if (l.report) body.push(...reportBody(l.report));
  if (l.graph) {
    body.push(el('details', {}, el('summary', {}, 'request and answer'),
      l.graph.params ? el('pre', {}, pretty(l.graph.params)) : null,
      l.graph.response ? el('pre', {}, pretty(l.graph.response)) : null));
  }
  if (l.webhook) {
    body.push(el('details', {}, el('summary', {}, `webhook body (${l.webhook.channel})`),
      el('pre', {}, pretty(l.webhook.body)),
      l.webhook.response ? el('div', {}, 'gateway answered: ' + l.webhook.response) : null));
  }
  return el('li', {'data-kind': l.kind, 'data-seq': l.seq, class: l.echo ? 'echo' : null, 'data-echo': l.echo ? 'true' : null,
    'data-rules': l.report ? l.report.rules.join(' ') : null}, head, l.echo ? null : body);
}

function reportBody(r) {
  const out = [];
  const what = `${r.kind}${r.standby ? ' (standby)' : ''}${r.text ? ': “' + r.text + '”' : ''}`;
  if (r.rules.length) {
    out.push(el('div', {}, 'Rule ', r.rules.map((n, i) => [i ? ', ' : '', el('span', {class: 'rule'}, n)]), ' fired on ', what));
  } else if (!r.note || r.note === 'no rule fired') {
    out.push(el('div', {}, `No rule fired on ${what}`));
  }
  if (r.actions && r.actions.length) {
    out.push(el('ul', {class: 'actions-list'}, r.actions.map((a) => el('li', {class: a.error ? 'err' : '', 'data-action': a.kind},
      describeAction(a), a.error ? ' — failed: ' + a.error : ' ✓'))));
  }
  if (r.trace && r.trace.length) {
    const fired = r.trace.filter((t) => t.fired).length;
    out.push(el('details', {open: r.rules.length === 0 && r.trace.length <= 8},
      el('summary', {}, `why: ${r.trace.length} rule(s) looked at, ${fired} fired`),
      el('ul', {class: 'trace'}, r.trace.map((t) => el('li', {class: t.fired ? 'fired' : 'skip'},
        (t.fired ? '✓ ' : '✗ ') + t.rule, t.reason ? ' — ' + t.reason : '')))));
  }
  if (r.owner) out.push(el('div', {class: 'who'}, 'thread owner after: ' + r.owner));
  if (r.paused) out.push(el('div', {class: 'who'}, 'the bot was paused for this user (a person wrote to them; handover.pause_on_human)'));
  return out;
}

// describeAction says what an action did in words: reply “Hi” with
// buttons [Talk to a person], pass the thread to zendesk, …
function describeAction(a) {
  const f = a.fields || {};
  const q = (s) => `“${s}”`;
  const titles = (list) => list.map((x) => `[${x.title}]`).join(' ');
  const parts = [];
  switch (a.kind) {
    case 'reply':
    case 'echo':
      parts.push(a.kind === 'echo' ? 'echo' : 'reply');
      if (f.text) parts.push(q(f.text));
      for (const m of ['image', 'video', 'audio', 'file']) if (f[m]) parts.push(`${m} ${f[m]}`);
      if (f.cards) parts.push(`${f.cards.length} card(s): ${f.cards.map((c) => q(c.title)).join(', ')}`);
      if (f.buttons) parts.push('with buttons ' + titles(f.buttons));
      if (f.quick_replies) parts.push('with quick replies ' + titles(f.quick_replies));
      break;
    case 'pass_thread_control':
      parts.push(`pass the thread to ${f.target || f.app_id || 'the default app'}`);
      if (f.metadata) parts.push('— note ' + q(f.metadata));
      break;
    case 'take_thread_control':
    case 'request_thread_control':
      parts.push(a.kind === 'take_thread_control' ? 'take the thread' : 'ask for the thread');
      if (f.metadata) parts.push('— note ' + q(f.metadata));
      break;
    case 'release_thread_control':
      parts.push('release the thread');
      break;
    case 'sender_action':
      parts.push(({typing_on: 'show typing', typing_off: 'stop typing', mark_seen: 'mark seen'})[f.action] || `sender action ${f.action || ''}`);
      break;
    default:
      parts.push(a.kind);
      for (const [k, v] of Object.entries(f)) parts.push(`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return parts.join(' ');
}

// ---- actions ----

function delivered(d) {
  return d.webhook ? `delivered, the gateway answered ${d.webhook.status}` : 'done';
}

async function userSays(body) {
  const user = selected;
  try {
    const d = await post(`/users/${encodeURIComponent(user)}/messages`, body);
    pending = pending.filter((p) => p !== user);
    status('user-status', `${delivered(d)} (on ${d.channel})`);
  } catch (err) {
    status('user-status', err.message, true);
  }
}

function tapQuickReply(q) { userSays({quick_reply: q.payload, text: q.title}); }

async function tapButton(b) {
  const user = selected;
  try {
    const d = await post(`/users/${encodeURIComponent(user)}/postbacks`, {payload: b.payload, title: b.title});
    status('user-status', `${delivered(d)} (postback on ${d.channel})`);
  } catch (err) {
    status('user-status', err.message, true);
  }
}

async function agentDoes(action, body, what) {
  const app = agentApp();
  try {
    const d = await post(`/agents/${encodeURIComponent(app)}/${action}`, Object.assign({user: selected}, body));
    status('agent-status', `${app}: ${what} — ${delivered(d)}`);
  } catch (err) {
    status('agent-status', `${app}: ${err.message}`, true);
  }
}

function init() {
  $('user-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('user-input');
    const text = input.value.trim();
    if (!text || !selected) return;
    input.value = '';
    userSays({text});
  });
  $('agent-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('agent-input');
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    agentDoes('messages', {text}, 'reply sent');
  });
  $('agent-done').addEventListener('click', () => agentDoes('done', {}, 'passed the thread back to the bot'));
  $('agent-take').addEventListener('click', () => agentDoes('take', {}, 'took the thread'));
  $('agent-request').addEventListener('click', () => agentDoes('request', {}, 'asked for the thread'));
  $('agent-release').addEventListener('click', () => agentDoes('release', {}, 'released the thread (idle: the bot answers next)'));
  $('menu-toggle').addEventListener('click', () => { menuOpen = !menuOpen; renderMenu(); });
  $('agent-app').addEventListener('change', (ev) => { agentChoice = ev.target.value; render(); });
  $('only-user').addEventListener('change', () => renderLog());
  $('new-user').addEventListener('click', () => {
    selected = newPSID();
    pending.push(selected);
    agentChoice = null;
    render();
    $('user-input').focus();
  });
  connect();
}

document.addEventListener('DOMContentLoaded', init);
