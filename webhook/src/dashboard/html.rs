//! The dashboard and login pages as plain server-rendered HTML (no JavaScript). Every piece of
//! stored text goes through [`escape`].

use std::fmt::Write as _;

use chrono::Duration;

use super::data::DashboardData;
use super::svg;

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 1.5rem;color:#222;background:#fafafa}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.25rem}\
section{margin-bottom:1rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}\
.muted{color:#666}.warn{background:#fff4e5;border:1px solid #f0b35a;padding:.5rem 1rem;border-radius:4px}\
pre{white-space:pre-wrap;font-family:inherit;background:#fff;border:1px solid #eee;padding:.75rem;border-radius:4px}\
.chart{max-width:100%;height:auto}.legend span{display:inline-block;width:10px;height:10px;margin:0 .25rem 0 .75rem}\
form.inline{display:inline}";

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// The login form. `error` is shown above it after a wrong token.
pub fn login_page(error: Option<&str>) -> String {
    let mut s = head("Wellbeing dashboard: sign in");
    s.push_str("<main><h1>Wellbeing dashboard</h1>");
    if let Some(e) = error {
        let _ = write!(s, "<p class=\"warn\" role=\"alert\">{}</p>", escape(e));
    }
    s.push_str(
        "<form method=\"post\" action=\"/dashboard/login\"><p><label for=\"token\">Dashboard token</label><br>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" size=\"70\" required></p>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p class=\"muted\">The token is in the file <code>dashboard-token</code> in the assistant's data directory.</p></main></body></html>",
    );
    s
}

/// The dashboard page.
pub fn dashboard_page(d: &DashboardData) -> String {
    let mut s = head("Wellbeing dashboard");
    s.push_str("<header><h1>Wellbeing dashboard</h1>");
    let _ = write!(
        s,
        "<p class=\"muted\">{} · {} · <form class=\"inline\" method=\"post\" action=\"/dashboard/logout\"><button type=\"submit\">Sign out</button></form></p>",
        d.today.format("%A %-d %B %Y"),
        escape(&d.time_zone)
    );
    s.push_str("<p class=\"muted\">An AI assistant's view of what you told it; not a substitute for professional care.</p></header><main>");

    if let Some(until) = d.paused_until {
        let _ = write!(s, "<p class=\"warn\">Paused until {} (UTC).</p>", until.format("%Y-%m-%d %H:%M"));
    }
    if !d.missing_secrets.is_empty() {
        s.push_str("<section id=\"missing-secrets\" class=\"warn\"><strong>Missing secrets</strong> (set them with <code>wellbeing secrets resolve</code>):<ul>");
        for name in &d.missing_secrets {
            let _ = write!(s, "<li><code>{}</code></li>", escape(name));
        }
        s.push_str("</ul></section>");
    }
    if d.user.is_none() {
        s.push_str("<p>No check-ins yet. Tell the assistant how you're doing and this page fills up.</p>");
    }

    s.push_str("<section id=\"mood\"><h2>Mood over the last year</h2>");
    s.push_str(&svg::mood_calendar(&d.mood_by_day, d.today));
    let _ = write!(
        s,
        "<p class=\"legend muted\"><span style=\"background:{}\"></span>Low<span style=\"background:{}\"></span>Mixed<span style=\"background:{}\"></span>Good<span style=\"background:{}\"></span>No check-in</p></section>",
        svg::valence_colour(Some(-1.0)),
        svg::valence_colour(Some(0.0)),
        svg::valence_colour(Some(1.0)),
        svg::valence_colour(None)
    );

    s.push_str("<section id=\"sleep-energy\"><h2>Sleep and energy</h2>");
    let start = d.today - Duration::days(super::data::SLEEP_DAYS - 1);
    s.push_str(&svg::sleep_energy(&d.sleep_energy, start, d.today));
    s.push_str("<p class=\"legend muted\"><span style=\"background:#6a8fd8\"></span>Sleep hours<span style=\"background:#e08a1e\"></span>Energy</p></section>");

    s.push_str("<section id=\"goals\"><h2>Goals</h2>");
    if d.goals.is_empty() {
        s.push_str("<p class=\"muted\">No goals yet.</p>");
    } else {
        s.push_str("<table><tr><th>Goal</th><th>Progress</th><th></th><th>Streak</th></tr>");
        for g in &d.goals {
            let p = &g.progress;
            let state = if p.current >= p.target {
                "met"
            } else if p.on_track {
                "on track"
            } else {
                "behind"
            };
            let _ = write!(
                s,
                "<tr class=\"goal\"><td>{}<br><span class=\"muted\">{} · {}</span></td><td>{}</td><td>{} ({state})<br><span class=\"muted\">{} to {}</span></td><td>{}</td></tr>",
                escape(&g.description),
                escape(&g.name),
                escape(&g.pillar),
                svg::progress_bar(&g.description, p.current, p.target, p.on_track),
                escape(&p.summary),
                escape(&p.period_start),
                escape(&p.period_end),
                p.streak
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>");

    s.push_str("<section id=\"pillars\"><h2>Learned pillars</h2>");
    if d.pillars.is_empty() {
        s.push_str("<p class=\"muted\">Nothing learned yet: when you mention a concern often, I'll ask whether to track it.</p>");
    }
    for p in &d.pillars {
        let answer = match p.answer {
            Some(wellbeing_assistant::goals::pillars::Answer::Yes) => "tracked",
            Some(wellbeing_assistant::goals::pillars::Answer::NotNow) => "not now",
            Some(wellbeing_assistant::goals::pillars::Answer::Never) => "never",
            None => "asked, no answer yet",
        };
        let _ = write!(
            s,
            "<details class=\"pillar\"><summary><strong>{}</strong>: {} mentions, asked {} ({answer}){}</summary><ul>",
            escape(&p.pillar),
            p.mentions,
            p.asked_at.format("%Y-%m-%d"),
            p.goal_name.as_deref().map(|g| format!(", goal <code>{}</code>", escape(g))).unwrap_or_default()
        );
        for (id, date, text) in &p.evidence {
            let _ = write!(
                s,
                "<li>{date}: {}</li>",
                text.as_deref().map(escape).unwrap_or_else(|| format!("check-in #{id}"))
            );
        }
        s.push_str("</ul></details>");
    }
    s.push_str("</section>");

    s.push_str("<section id=\"insights\"><h2>Insights</h2>");
    let _ = write!(s, "<h3>This week so far</h3><pre>{}</pre>", escape(&d.this_week));
    for i in &d.insights {
        let _ = write!(
            s,
            "<h3>Week of {}</h3><pre>{}</pre><p class=\"muted\">Written by {}.</p>",
            i.week_start.format("%-d %B %Y"),
            escape(&i.text),
            if i.phrased_by == "llm" { "the assistant (numbers checked against the data)" } else { "template" }
        );
    }
    s.push_str("</section>");

    s.push_str("<section id=\"recent\"><h2>Recent check-ins</h2>");
    if d.recent.is_empty() {
        s.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        s.push_str("<table><tr><th>Day</th><th>You said</th><th>Understood</th></tr>");
        for c in &d.recent {
            let _ = write!(
                s,
                "<tr class=\"checkin\"><td>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
                c.local_date,
                c.text.as_deref().map(escape).unwrap_or_else(|| "<span class=\"muted\">(no text stored)</span>".into()),
                escape(&c.summary)
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section></main></body></html>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::data::{GoalRow, RecentCheckIn};
    use chrono::NaiveDate;
    use std::collections::BTreeMap;

    fn data() -> DashboardData {
        let today: NaiveDate = "2026-05-10".parse().unwrap();
        DashboardData {
            user: Some("slack:T1:U1".into()),
            today,
            time_zone: "Europe/Berlin".into(),
            mood_by_day: BTreeMap::new(),
            sleep_energy: BTreeMap::new(),
            goals: vec![GoalRow {
                name: "workouts".into(),
                description: "Work out 3 times a week".into(),
                pillar: "physical-activity".into(),
                progress: wellbeing_crds::goal::GoalProgress {
                    current: 1,
                    target: 3,
                    summary: "1/3".into(),
                    period_start: "2026-05-04".into(),
                    period_end: "2026-05-10".into(),
                    on_track: false,
                    streak: 2,
                },
            }],
            pillars: vec![],
            recent: vec![RecentCheckIn {
                id: 1,
                local_date: today,
                created_at: Default::default(),
                text: Some("<script>alert('x')</script> & \"quotes\"".into()),
                summary: "mood <b>".into(),
            }],
            insights: vec![],
            this_week: "Your week <i>".into(),
            missing_secrets: vec!["openweather-api-key".into(), "<img src=x>".into()],
            paused_until: None,
        }
    }

    #[test]
    fn stored_text_is_escaped_everywhere() {
        let page = dashboard_page(&data());
        assert!(!page.contains("<script>"), "raw text must never become markup");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"));
        assert!(page.contains("mood &lt;b&gt;"));
        assert!(page.contains("Your week &lt;i&gt;"));
        assert!(page.contains("<code>&lt;img src=x&gt;</code>"));
        assert!(!page.contains("<img"));
    }

    #[test]
    fn the_page_has_every_section_and_no_javascript() {
        let page = dashboard_page(&data());
        for id in ["mood", "sleep-energy", "goals", "pillars", "insights", "recent", "missing-secrets"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(page.contains("class=\"chart mood-calendar\""));
        assert!(page.contains("class=\"chart sleep-energy\""));
        assert!(page.contains("1/3 (behind)"));
        assert!(page.contains("openweather-api-key"));
        assert!(!page.to_lowercase().contains("<script"));
        assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>"));
    }

    #[test]
    fn login_page_escapes_its_error() {
        let page = login_page(Some("wrong <token>"));
        assert!(page.contains("wrong &lt;token&gt;"));
        assert!(page.contains("action=\"/dashboard/login\""));
    }
}
