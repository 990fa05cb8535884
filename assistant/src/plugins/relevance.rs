//! Which plugins fit a message when no LLM chooses: the Plugin's triggers, matched purely.

use super::PluginEndpoint;

/// Plugins whose trigger pillars overlap `pillars` or whose trigger keywords occur in `text` as
/// whole words or word prefixes ("sleep" matches "sleeping", not "asleep"), case-insensitive.
/// Order follows `plugins`; pillar matches and keyword matches are not ranked apart.
pub fn relevant<'a>(plugins: &'a [PluginEndpoint], text: &str, pillars: &[String]) -> Vec<&'a PluginEndpoint> {
    let words = words(text);
    plugins
        .iter()
        .filter(|p| {
            let t = &p.triggers;
            t.pillars.iter().any(|pillar| pillars.iter().any(|q| q.eq_ignore_ascii_case(pillar)))
                || t.keywords.iter().any(|k| keyword_in(&words, k))
        })
        .collect()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// A keyword may be several words ("can't sleep"): its words must follow each other in `words`,
/// the last one as a prefix.
fn keyword_in(words: &[String], keyword: &str) -> bool {
    let parts = self::words(keyword);
    let Some((last, init)) = parts.split_last() else { return false };
    if words.len() < parts.len() {
        return false;
    }
    words.windows(parts.len()).any(|w| w[..init.len()] == *init && w[init.len()].starts_with(last.as_str()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use wellbeing_crds::plugin::Triggers;

    use super::*;
    use crate::plugins::PluginTransport;

    fn plugin(name: &str, pillars: &[&str], keywords: &[&str]) -> PluginEndpoint {
        PluginEndpoint {
            name: name.into(),
            version: 1,
            transport: PluginTransport::Stdio { command: "x".into(), args: vec![], env: BTreeMap::new() },
            triggers: Triggers {
                pillars: pillars.iter().map(|s| s.to_string()).collect(),
                goals: vec![],
                keywords: keywords.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    fn names(found: Vec<&PluginEndpoint>) -> Vec<&str> {
        found.into_iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn keywords_match_words_and_prefixes_not_substrings() {
        let all = [
            plugin("hydration", &["hydration"], &["water", "thirsty", "headache"]),
            plugin("sleep", &["sleep"], &["tired", "bed", "insomnia", "sleep"]),
        ];
        assert_eq!(names(relevant(&all, "Forgot to drink WATER all day, headache", &[])), ["hydration"]);
        assert_eq!(names(relevant(&all, "been sleeping badly", &[])), ["sleep"]);
        // "bed" must not fire inside "embedded", nor "sleep" inside "asleep".
        assert!(relevant(&all, "embedded systems talk; fell asleep", &[]).is_empty());
        assert_eq!(names(relevant(&all, "so tired, headache", &[])), ["hydration", "sleep"]);
    }

    #[test]
    fn pillars_match_without_keywords() {
        let all = [plugin("hydration", &["hydration"], &[]), plugin("sleep", &["sleep"], &[])];
        assert_eq!(names(relevant(&all, "nothing here", &["Sleep".to_string()])), ["sleep"]);
    }

    #[test]
    fn multi_word_keywords_need_adjacent_words() {
        let all = [plugin("stretch", &[], &["long meeting"])];
        assert_eq!(names(relevant(&all, "another long meetings day", &[])), ["stretch"]);
        assert!(relevant(&all, "a long day with a meeting", &[]).is_empty());
        assert!(relevant(&[plugin("empty", &[], &["", " "])], "anything", &[]).is_empty());
    }
}
