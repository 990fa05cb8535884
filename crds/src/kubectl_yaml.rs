//! What kubectl's YAML parser refuses or reads differently, found before `serde_yaml` is more
//! forgiving about it.
//!
//! kubectl (through sigs.k8s.io/yaml) parses manifests with go-yaml v2, a YAML 1.1 port of
//! libyaml 0.1; `serde_yaml` uses libyaml 0.2 with YAML 1.2 resolution. Two differences bite
//! manifests people write by hand:
//!
//! - In a flow collection (`{...}` or `[...]`) go-yaml's `yaml_parser_scan_plain_scalar` ends a
//!   plain scalar at `?` as well as at `,[]{}` (scannerc.go: "Check for indicators that may end a
//!   plain scalar"), and a `?` there starts a key. `{at: "16:00", message: Time for water?}` is
//!   refused with "did not find expected ',' or '}'".
//! - go-yaml v2's resolver (resolve.go) reads the plain scalars `y Y yes Yes YES n N no No NO on On
//!   ON off Off OFF` as booleans, where YAML 1.2 reads strings: `message: yes` is a type error on
//!   the apiserver and `active: on` is `true` for kubectl but a string for serde_yaml.
//!
//! [`check`] scans the text (quotes, comments, block scalars and flow depth, no full parse) and
//! reports the first such place with its line and column.

/// A place kubectl would read differently from `serde_yaml`, 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct KubectlYamlError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// Plain scalars go-yaml v2 resolves to booleans and YAML 1.2 (serde_yaml) does not.
const YAML11_BOOLEANS: [&str; 16] =
    ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"];

/// True when kubectl would resolve this plain scalar to a boolean that serde_yaml reads as a string.
pub fn is_yaml11_only_boolean(s: &str) -> bool {
    YAML11_BOOLEANS.contains(&s)
}

/// `serde_yaml::to_string`, with the YAML 1.1 boolean words quoted: serde_yaml's emitter quotes
/// only what YAML 1.2 would misread, so a keyword `no` or a message `Yes` would reach kubectl as
/// a boolean.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, serde_yaml::Error> {
    let text = serde_yaml::to_string(value)?;
    let mut out = String::with_capacity(text.len() + 16);
    // Lines of a block scalar (`|-` and the like) are content, never rewritten.
    let mut block_scalar_parent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        let indent = body.len() - body.trim_start_matches(' ').len();
        if let Some(parent) = block_scalar_parent {
            if body.trim().is_empty() || indent > parent {
                out.push_str(line);
                continue;
            }
            block_scalar_parent = None;
        }
        let value_start = value_start(body);
        let value = &body[value_start..];
        let header: Vec<char> = value.chars().collect();
        if matches!(header.first(), Some('|' | '>')) && is_block_scalar_header(&header) {
            block_scalar_parent = Some(indent);
        }
        if is_yaml11_only_boolean(value) {
            out.push_str(&body[..value_start]);
            out.push('\'');
            out.push_str(value);
            out.push('\'');
        } else {
            out.push_str(body);
        }
        out.push_str(newline);
    }
    Ok(out)
}

/// Byte offset of the scalar in a block-style line `serde_yaml` wrote: after the indentation,
/// any `- ` sequence markers, and a `key: ` prefix.
fn value_start(line: &str) -> usize {
    let mut rest = line.trim_start_matches(' ');
    while let Some(r) = rest.strip_prefix("- ") {
        rest = r;
    }
    if let Some(colon) = rest.find(": ")
        && !rest[..colon].contains(['\'', '"', '#'])
    {
        rest = &rest[colon + 2..];
    }
    line.len() - rest.len()
}

pub fn check(text: &str) -> Result<(), KubectlYamlError> {
    let mut flow_depth = 0usize;
    // A quoted scalar may span lines: its quote character while inside one.
    let mut quote: Option<char> = None;
    // Inside a block scalar (`|` or `>`): content lines are indented deeper than this.
    let mut block_scalar_parent: Option<usize> = None;

    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block_scalar_parent {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block_scalar_parent = None;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        // Plain scalars at the start of a line in block context may be keys or values; only
        // the value position matters for booleans, but keys resolve the same way in go-yaml.
        while i < chars.len() {
            let c = chars[i];
            if let Some(q) = quote {
                if q == '\'' && c == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    quote = None;
                } else if q == '"' && c == '\\' {
                    i += 2;
                    continue;
                } else if q == '"' && c == '"' {
                    quote = None;
                }
                i += 1;
                continue;
            }
            match c {
                ' ' | '\t' => i += 1,
                '#' if i == 0 || chars[i - 1] == ' ' || chars[i - 1] == '\t' => break,
                '\'' | '"' => {
                    quote = Some(c);
                    i += 1;
                }
                '{' | '[' => {
                    flow_depth += 1;
                    i += 1;
                }
                '}' | ']' => {
                    flow_depth = flow_depth.saturating_sub(1);
                    i += 1;
                }
                ',' if flow_depth > 0 => i += 1,
                '?' if flow_depth > 0 => {
                    return Err(KubectlYamlError {
                        line: line_no,
                        column: i + 1,
                        reason: "a '?' inside a flow collection ({...} or [...]) ends the text there for kubectl \
                                 (\"did not find expected ',' or '}'\"); put the text in quotes"
                            .to_string(),
                    });
                }
                '|' | '>' if flow_depth == 0 && is_block_scalar_header(&chars[i..]) => {
                    block_scalar_parent = Some(indent);
                    break;
                }
                '-' if flow_depth == 0 && chars.get(i + 1).is_none_or(|n| *n == ' ') => i += 1,
                '&' | '*' | '!' => {
                    // Anchors, aliases and tags: skip the name.
                    while i < chars.len() && chars[i] != ' ' {
                        i += 1;
                    }
                }
                _ => {
                    let start = i;
                    let end = plain_scalar_end(&chars, i, flow_depth > 0);
                    let scalar: String = chars[start..end].iter().collect::<String>().trim_end().to_string();
                    if flow_depth > 0
                        && let Some(q) = scalar.find('?')
                    {
                        return Err(KubectlYamlError {
                            line: line_no,
                            column: start + scalar[..q].chars().count() + 1,
                            reason: "a '?' inside a flow collection ({...} or [...]) ends the text there for \
                                     kubectl (\"did not find expected ',' or '}'\"); put the text in quotes"
                                .to_string(),
                        });
                    }
                    if is_yaml11_only_boolean(&scalar) {
                        return Err(KubectlYamlError {
                            line: line_no,
                            column: start + 1,
                            reason: format!(
                                "kubectl reads the unquoted {scalar:?} as a boolean (YAML 1.1); write true or false, \
                                 or put it in quotes if it is text"
                            ),
                        });
                    }
                    i = end.max(start + 1);
                    // Skip the ':' that made it a key.
                    if chars.get(i) == Some(&':') {
                        i += 1;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Where a plain scalar starting at `start` ends, by go-yaml v2's rules: at `: ` / `:` at the end,
/// at ` #`, at the end of the line, and in flow context at `,[]{}` (the '?' is reported by the
/// caller, so it is kept inside).
fn plain_scalar_end(chars: &[char], start: usize, in_flow: bool) -> usize {
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == ':' && next.is_none_or(|n| n == ' ' || n == '\t' || (in_flow && ",[]{}".contains(n))) {
            break;
        }
        if c == '#' && i > start && (chars[i - 1] == ' ' || chars[i - 1] == '\t') {
            break;
        }
        if in_flow && ",[]{}".contains(c) {
            break;
        }
        i += 1;
    }
    i
}

/// `|`, `>`, `|-`, `>+2` ... followed by nothing or a comment.
fn is_block_scalar_header(rest: &[char]) -> bool {
    let mut i = 1;
    while i < rest.len() && (rest[i] == '-' || rest[i] == '+' || rest[i].is_ascii_digit()) {
        i += 1;
    }
    let tail: String = rest[i..].iter().collect();
    let tail = tail.trim_start();
    tail.is_empty() || tail.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_string_quotes_what_kubectl_would_read_as_booleans() {
        let value = serde_json::json!({"keywords": ["no", "tea", "on"], "message": "Yes", "nested": [["y"]], "ok": true,
            "code": "def run():\n    x = 1\nno\n"});
        let text = to_string(&value).unwrap();
        assert_eq!(check(&text), Ok(()), "{text}");
        let back: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, value);
        assert!(text.contains("- 'no'") && text.contains("message: 'Yes'") && text.contains("ok: true"), "{text}");
        assert!(text.contains("\n  no\n"), "block scalar content is left alone: {text}");
    }

    #[test]
    fn question_mark_in_a_flow_mapping_is_what_kubectl_refused() {
        let text = "reminders:\n  - {at: \"11:00\"}\n  - {at: \"16:00\", message: Time for a glass of water?}\n";
        let e = check(text).unwrap_err();
        assert_eq!((e.line, e.column), (3, 53), "{e}");
        assert!(check("reminders:\n  - {at: \"16:00\", message: \"Time for a glass of water?\"}\n").is_ok());
        assert!(check("reminders:\n  - at: \"16:00\"\n    message: Time for a glass of water?\n").is_ok());
        assert!(check("keywords: [water, thirsty?]\n").is_err());
    }

    #[test]
    fn yaml11_booleans_in_plain_text_are_refused_quoted_ones_are_not() {
        let e = check("spec:\n  message: yes\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 12));
        assert!(check("spec:\n  active: on\n").is_err());
        assert!(check("keywords: [tea, NO]\n").is_err());
        assert!(check("spec:\n  message: \"yes\"\n  other: 'no'\n  active: true\n  text: yes please\n").is_ok());
    }

    #[test]
    fn comments_block_scalars_urls_and_times_are_fine() {
        let text = "\
# A comment with a question? and yes
spec:
  url: http://127.0.0.1:8080/mcp   # and here?
  at: 16:00
  code: |
    def run():
        return {\"ok\": \"yes?\"}
    # yes
  prompt: >-
    Are you ok?
  items: [\"a?\", 'b?', c]
  escaped: \"quote \\\" yes\"
";
        assert_eq!(check(text), Ok(()));
    }

    #[test]
    fn quoted_strings_spanning_lines_are_skipped() {
        assert!(check("a: \"first line\n  second? yes\"\nb: [x]\n").is_ok());
        assert!(check("a: 'it''s fine?'\nb: {c: d?}\n").is_err());
    }
}
