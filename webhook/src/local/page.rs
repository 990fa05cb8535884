//! The local chat page: one server-rendered HTML document with its history already in it, and a
//! few lines of JavaScript that send messages and poll for new ones (check-in prompts arrive at
//! the persona's random times). No build step, no external resources.

use std::fmt::Write as _;

use super::{LocalMessage, summary};

/// Seconds between two polls of the page for new messages. Check-in times are whole minutes, so a
/// few seconds of delay is invisible, and a poll of an idle instance costs one indexed query.
pub const POLL_SECONDS: u32 = 3;

/// Escape text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render_message(out: &mut String, m: &LocalMessage) {
    let who = if m.direction == "in" { "in" } else { "out" };
    let _ = write!(
        out,
        r#"<li class="msg {who} kind-{kind}" data-id="{id}"><div class="text">{text}</div><div class="meta">{time}</div>"#,
        kind = escape(&m.kind),
        id = m.id,
        text = escape(&m.text),
        time = escape(&m.created_at),
    );
    if let Some(c) = &m.checkin {
        let _ = write!(
            out,
            r#"<dl class="checkin" data-checkin-id="{}"><dt class="title">Stored check-in</dt><dd></dd>"#,
            c.id
        );
        for (k, v) in summary(&c.data) {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
        }
        out.push_str("</dl>");
    }
    if !m.actions.is_empty() {
        let _ = write!(out, r#"<div class="actions" data-message-id="{}">"#, m.id);
        for b in &m.actions {
            let _ = write!(
                out,
                r#"<button type="button" class="action {style}" data-action-id="{id}">{label}</button>"#,
                style = escape(b.style.as_deref().unwrap_or("")),
                id = escape(&b.action_id),
                label = escape(&b.label),
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</li>");
}

/// The whole page. `token` goes into a meta tag for the script's API calls; the page itself is
/// only served to requests whose Host is the local address (see the module's guard).
pub fn render(assistant_name: &str, messages: &[LocalMessage], token: &str) -> String {
    let mut list = String::new();
    for m in messages {
        render_message(&mut list, m);
    }
    let last_id = messages.last().map(|m| m.id).unwrap_or(0);
    let name = escape(assistant_name);
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="wellbeing-token" content="{token}">
<meta name="referrer" content="no-referrer">
<title>{name} · wellbeing</title>
<style>
  body {{ font: 16px/1.45 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }}
  main {{ max-width: 46rem; margin: 0 auto; padding: 1rem; display: flex; flex-direction: column; min-height: 100vh; box-sizing: border-box; }}
  header h1 {{ font-size: 1.3rem; margin: .2rem 0; }}
  .notice {{ background: #fff7e0; border: 1px solid #e8d28a; border-radius: 6px; padding: .6rem .8rem; font-size: .92rem; }}
  #messages {{ list-style: none; padding: 0; flex: 1; }}
  .msg {{ margin: .5rem 0; padding: .6rem .8rem; border-radius: 10px; max-width: 85%; white-space: pre-wrap; }}
  .msg.in {{ background: #d9ecff; margin-left: auto; }}
  .msg.out {{ background: #fff; border: 1px solid #dde1e6; }}
  .msg.kind-checkin_prompt {{ border-left: 4px solid #6aa84f; }}
  .msg.kind-crisis {{ border-left: 4px solid #c0392b; }}
  .meta {{ font-size: .75rem; color: #6b7480; margin-top: .2rem; }}
  .checkin {{ display: grid; grid-template-columns: auto 1fr; gap: .1rem .8rem; font-size: .85rem; background: #eef6ee; border-radius: 6px; padding: .4rem .6rem; margin: .4rem 0 0; white-space: normal; }}
  .checkin dt {{ font-weight: 600; }} .checkin dd {{ margin: 0; }}
  .checkin .title {{ grid-column: 1 / -1; }}
  form {{ display: flex; gap: .5rem; position: sticky; bottom: 0; background: #f6f7f9; padding: .5rem 0; }}
  textarea {{ flex: 1; font: inherit; padding: .5rem; border-radius: 6px; border: 1px solid #b9c0c8; resize: vertical; }}
  button {{ font: inherit; padding: .5rem 1rem; border-radius: 6px; border: 0; background: #2f6fb3; color: #fff; }}
  button:disabled {{ opacity: .6; }}
  #status {{ font-size: .8rem; color: #a33; min-height: 1em; }}
  .actions {{ display: flex; flex-wrap: wrap; gap: .4rem; margin-top: .5rem; white-space: normal; }}
  .actions button {{ padding: .3rem .8rem; font-size: .9rem; background: #e9eef4; color: #1d232b; border: 1px solid #c6ced8; }}
  .actions button.primary {{ background: #2f6fb3; color: #fff; border-color: #2f6fb3; }}
  .actions button.danger {{ background: #fff; color: #a33; border-color: #d8a3a3; }}
</style>
</head>
<body>
<main>
<header>
  <h1>{name}</h1>
  <p class="notice" id="disclaimer"><strong>This is an AI assistant, not a person, and not a substitute for professional care.</strong>
  It does not diagnose. If you are in crisis or thinking about harming yourself, contact your local emergency number
  or a crisis line now. Everything here stays on this computer.</p>
</header>
<ol id="messages" data-last-id="{last_id}" aria-live="polite">{list}</ol>
<p id="status" role="status"></p>
<form id="composer">
  <textarea id="text" name="text" rows="2" placeholder="How are you doing? e.g. slept badly, skipped breakfast" required></textarea>
  <button id="send" type="submit">Send</button>
</form>
</main>
<script>
(() => {{
  const token = document.querySelector('meta[name="wellbeing-token"]').content;
  const list = document.getElementById('messages');
  const form = document.getElementById('composer');
  const input = document.getElementById('text');
  const button = document.getElementById('send');
  const status = document.getElementById('status');
  let lastId = Number(list.dataset.lastId) || 0;
  const headers = {{ 'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json' }};

  function newKey() {{
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }}
  function el(tag, cls, text) {{
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }}
  function render(m) {{
    if (list.querySelector('li[data-id="' + m.id + '"]')) return;
    const li = el('li', 'msg ' + (m.direction === 'in' ? 'in' : 'out') + ' kind-' + m.kind);
    li.dataset.id = m.id;
    li.appendChild(el('div', 'text', m.text));
    li.appendChild(el('div', 'meta', m.created_at));
    if (m.checkin) {{
      const dl = el('dl', 'checkin');
      dl.dataset.checkinId = m.checkin.id;
      dl.appendChild(el('dt', 'title', 'Stored check-in'));
      dl.appendChild(el('dd', '', ''));
      for (const [k, v] of m.checkin.summary) {{ dl.appendChild(el('dt', '', k)); dl.appendChild(el('dd', '', v)); }}
      li.appendChild(dl);
    }}
    if (m.actions && m.actions.length) {{
      const box = el('div', 'actions');
      box.dataset.messageId = m.id;
      for (const b of m.actions) {{
        const btn = el('button', 'action' + (b.style ? ' ' + b.style : ''), b.label);
        btn.type = 'button';
        btn.dataset.actionId = b.action_id;
        box.appendChild(btn);
      }}
      li.appendChild(box);
    }}
    list.appendChild(li);
    lastId = Math.max(lastId, m.id);
    li.scrollIntoView({{ block: 'end' }});
  }}
  async function poll() {{
    try {{
      const r = await fetch('/api/local/messages?after=' + lastId, {{ headers }});
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const body = await r.json();
      body.messages.forEach(render);
      if (status.dataset.kind === 'poll') {{ status.textContent = ''; status.dataset.kind = ''; }}
    }} catch (e) {{
      status.textContent = 'Cannot reach the assistant (' + e.message + '); retrying.';
      status.dataset.kind = 'poll';
    }}
  }}
  form.addEventListener('submit', async (ev) => {{
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    button.disabled = true;
    status.textContent = '';
    // One key per message: if the connection drops before the answer, the resend is the same
    // message, recorded and answered once.
    const payload = JSON.stringify({{ text, key: newKey() }});
    const post = () => fetch('/api/local/messages', {{ method: 'POST', headers, body: payload }});
    try {{
      let r;
      try {{ r = await post(); }} catch (_) {{ r = await post(); }}
      const body = await r.json().catch(() => ({{}}));
      if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
      input.value = '';
      if (r.status === 202) {{ status.textContent = body.error || 'Still working on it.'; return; }}
      body.messages.forEach(render);
    }} catch (e) {{
      status.textContent = 'Not sent: ' + e.message;
    }} finally {{
      button.disabled = false;
      input.focus();
    }}
  }});
  // Buttons on reminders, nudges and pillar questions: the same handler as Slack's buttons.
  list.addEventListener('click', async (ev) => {{
    const b = ev.target.closest('button[data-action-id]');
    if (!b) return;
    const box = b.closest('.actions');
    const buttons = box.querySelectorAll('button');
    buttons.forEach((x) => {{ x.disabled = true; }});
    try {{
      const r = await fetch('/api/local/actions', {{ method: 'POST', headers,
        body: JSON.stringify({{ message_id: Number(box.dataset.messageId), action_id: b.dataset.actionId }}) }});
      const body = await r.json().catch(() => ({{}}));
      if (r.status === 409) {{ box.remove(); status.textContent = body.error || ''; return; }}
      if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
      box.remove();
      body.messages.forEach(render);
    }} catch (e) {{
      status.textContent = 'Not done: ' + e.message;
      buttons.forEach((x) => {{ x.disabled = false; }});
    }}
  }});
  input.addEventListener('keydown', (ev) => {{
    if (ev.key === 'Enter' && !ev.shiftKey) {{ ev.preventDefault(); form.requestSubmit(); }}
  }});
  setInterval(poll, {poll_ms});
}})();
</script>
</body>
</html>
"##,
        token = escape(token),
        poll_ms = POLL_SECONDS * 1000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::StoredCheckIn;
    use wellbeing_assistant::checkin::{CheckIn, Level};

    #[test]
    fn text_is_escaped_and_the_check_in_is_shown() {
        let messages = vec![
            LocalMessage {
                id: 7,
                direction: "in".into(),
                kind: "message".into(),
                text: "<script>alert('x')</script> & tired".into(),
                created_at: "2026-05-04T10:00:00Z".into(),
                checkin: Some(StoredCheckIn {
                    id: 3,
                    data: CheckIn { energy: Level::Low, ..Default::default() },
                    summary: vec![],
                }),
                actions: vec![],
            },
            LocalMessage {
                id: 8,
                direction: "out".into(),
                kind: "reply".into(),
                text: "Rest up".into(),
                created_at: "2026-05-04T10:00:01Z".into(),
                checkin: None,
                actions: vec![],
            },
        ];
        let html = render("Sunny <3", &messages, "tok\"en");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; tired"));
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("<title>Sunny &lt;3 · wellbeing</title>"));
        assert!(html.contains(r#"content="tok&quot;en""#));
        assert!(html.contains(r#"data-last-id="8""#));
        assert!(html.contains("<dt>energy</dt><dd>low</dd>"), "{html}");
        assert!(html.contains("not a substitute for professional care"));
    }
}
