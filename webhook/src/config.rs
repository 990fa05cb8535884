//! Slack and Twilio settings from the environment: values directly (`SLACK_SIGNING_SECRET`) or from files
//! (`SLACK_SIGNING_SECRET_FILE`, how Kubernetes Secrets are mounted). Pure over a lookup function
//! so tests need no process environment.

use std::path::PathBuf;

use crate::slack::client::{BotToken, DEFAULT_API_BASE};
use crate::slack::signature::SigningSecret;
use crate::sms::client::{DEFAULT_API_BASE as TWILIO_API_BASE, Sender};
use crate::sms::signature::AuthToken;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set (set it, or {name}_FILE to a file that holds it)")]
    Missing { name: &'static str },
    #[error("failed to read {name}_FILE {path}")]
    ReadFile {
        name: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} is empty")]
    Empty { name: &'static str },
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: &'static str },
}

/// How the service talks to Slack.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub signing_secret: SigningSecret,
    pub bot_token: BotToken,
    /// `SLACK_API_BASE_URL`, default https://slack.com/api; tests point it at a local fake.
    pub api_base: String,
    /// `SLACK_BOT_USER_ID`: the bot's own user id. Learned from auth.test at start-up when unset.
    pub bot_user_id: Option<String>,
    /// `SLACK_USER_ID`: who scheduled check-ins go to. Unset: the user who last wrote to the bot.
    pub checkin_user: Option<String>,
    /// `SLACK_TEAM_ID`: the workspace of `checkin_user`.
    pub team_id: Option<String>,
}

impl SlackConfig {
    /// Read the settings through `env` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<SlackConfig, ConfigError> {
        let signing_secret = secret(&env, "SLACK_SIGNING_SECRET")?;
        let bot_token = secret(&env, "SLACK_BOT_TOKEN")?;
        let non_empty = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Ok(SlackConfig {
            signing_secret: SigningSecret::new(signing_secret),
            bot_token: BotToken::new(bot_token),
            api_base: non_empty("SLACK_API_BASE_URL").unwrap_or_else(|| DEFAULT_API_BASE.to_string()),
            bot_user_id: non_empty("SLACK_BOT_USER_ID"),
            checkin_user: non_empty("SLACK_USER_ID"),
            team_id: non_empty("SLACK_TEAM_ID"),
        })
    }
}

/// How the service talks to Twilio (SMS).
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// `TWILIO_ACCOUNT_SID` (`AC...`).
    pub account_sid: String,
    /// `TWILIO_AUTH_TOKEN`: signs Twilio's webhooks and authenticates our REST calls.
    pub auth_token: AuthToken,
    /// `TWILIO_FROM_NUMBER` or `TWILIO_MESSAGING_SERVICE_SID`.
    pub sender: Sender,
    /// `TWILIO_WEBHOOK_URL`: the public URL Twilio is given (`https://HOST/sms/twilio`), which it
    /// signs. Unset: the URL this server sees (right only without a TLS-terminating proxy).
    pub webhook_url: Option<String>,
    /// `TWILIO_API_BASE`, default https://api.twilio.com; tests point it at a local fake.
    pub api_base: String,
}

impl SmsConfig {
    /// The Twilio settings, or None when `TWILIO_ACCOUNT_SID` (and its `_FILE`) is unset: SMS is
    /// off. Once it is set, everything else it needs must be too.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<SmsConfig>, ConfigError> {
        let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
        if !set("TWILIO_ACCOUNT_SID") && !set("TWILIO_ACCOUNT_SID_FILE") {
            return Ok(None);
        }
        let account_sid = secret(&env, "TWILIO_ACCOUNT_SID")?;
        if !account_sid.starts_with("AC") || !account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::Invalid {
                name: "TWILIO_ACCOUNT_SID",
                reason: "an account SID is AC followed by letters and digits",
            });
        }
        let auth_token = AuthToken::new(secret(&env, "TWILIO_AUTH_TOKEN")?);
        let non_empty = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let sender = match (non_empty("TWILIO_FROM_NUMBER"), non_empty("TWILIO_MESSAGING_SERVICE_SID")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "TWILIO_FROM_NUMBER",
                    reason: "set it or TWILIO_MESSAGING_SERVICE_SID, not both",
                });
            }
            (Some(number), None) => {
                if format!("sms:{number}").parse::<wellbeing_assistant::people::Identity>().is_err() {
                    return Err(ConfigError::Invalid {
                        name: "TWILIO_FROM_NUMBER",
                        reason: "a phone number in E.164 form, e.g. +4915112345678",
                    });
                }
                Sender::From(number)
            }
            (None, Some(service)) => Sender::MessagingService(service),
            (None, None) => return Err(ConfigError::Missing { name: "TWILIO_FROM_NUMBER" }),
        };
        let webhook_url = non_empty("TWILIO_WEBHOOK_URL");
        if webhook_url.as_deref().is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
            return Err(ConfigError::Invalid {
                name: "TWILIO_WEBHOOK_URL",
                reason: "the full URL, https://HOST/sms/twilio",
            });
        }
        Ok(Some(SmsConfig {
            account_sid,
            auth_token,
            sender,
            webhook_url,
            api_base: non_empty("TWILIO_API_BASE").unwrap_or_else(|| TWILIO_API_BASE.to_string()),
        }))
    }
}

/// `NAME` if set, else the contents of the file named by `NAME_FILE` (trailing newline trimmed).
pub fn secret(env: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<String, ConfigError> {
    let value = match env(name).filter(|v| !v.is_empty()) {
        Some(value) => value,
        None => {
            let file_var = format!("{name}_FILE");
            let Some(path) = env(&file_var).filter(|v| !v.is_empty()) else {
                return Err(ConfigError::Missing { name });
            };
            let path = PathBuf::from(path);
            std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadFile { name, path, source })?
        }
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(ConfigError::Empty { name });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn values_come_from_variables_or_files() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "xoxb-from-file\n").unwrap();
        let cfg = SlackConfig::from_env(env(&[
            ("SLACK_SIGNING_SECRET", "s3cret"),
            ("SLACK_BOT_TOKEN_FILE", token_file.to_str().unwrap()),
            ("SLACK_API_BASE_URL", "http://127.0.0.1:9/api"),
        ]))
        .unwrap();
        assert_eq!(cfg.api_base, "http://127.0.0.1:9/api");
        assert_eq!(
            secret(&env(&[("SLACK_BOT_TOKEN_FILE", token_file.to_str().unwrap())]), "SLACK_BOT_TOKEN").unwrap(),
            "xoxb-from-file"
        );
        assert!(cfg.checkin_user.is_none());
    }

    #[test]
    fn missing_and_unreadable_settings_are_named() {
        let err = SlackConfig::from_env(env(&[("SLACK_BOT_TOKEN", "x")])).unwrap_err();
        assert!(err.to_string().contains("SLACK_SIGNING_SECRET"), "{err}");
        let err = secret(&env(&[("SLACK_BOT_TOKEN_FILE", "/nonexistent/token")]), "SLACK_BOT_TOKEN").unwrap_err();
        assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
        let err = secret(&env(&[("SLACK_BOT_TOKEN", "  \n")]), "SLACK_BOT_TOKEN").unwrap_err();
        assert!(matches!(err, ConfigError::Empty { .. }));
    }

    #[test]
    fn twilio_settings_are_off_unless_an_account_is_named_and_complete_when_it_is() {
        assert!(SmsConfig::from_env(env(&[])).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "tok3n\n").unwrap();
        let cfg = SmsConfig::from_env(env(&[
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN_FILE", token_file.to_str().unwrap()),
            ("TWILIO_FROM_NUMBER", "+4915112345678"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(cfg.auth_token.expose(), "tok3n");
        assert_eq!(cfg.sender, Sender::From("+4915112345678".into()));
        assert_eq!(cfg.api_base, "https://api.twilio.com");
        assert!(!format!("{cfg:?}").contains("tok3n"), "the token never reaches a log");
        let service = SmsConfig::from_env(env(&[
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_MESSAGING_SERVICE_SID", "MG1"),
            ("TWILIO_WEBHOOK_URL", "https://wellbeing.example.org/sms/twilio"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(service.sender, Sender::MessagingService("MG1".into()));
        let base = [("TWILIO_ACCOUNT_SID", "AC123"), ("TWILIO_AUTH_TOKEN", "t")];
        let err = SmsConfig::from_env(env(&base)).unwrap_err();
        assert!(err.to_string().contains("TWILIO_FROM_NUMBER"), "{err}");
        let err = SmsConfig::from_env(env(&[("TWILIO_ACCOUNT_SID", "AC123")])).unwrap_err();
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
        let err = SmsConfig::from_env(env(&[base[0], base[1], ("TWILIO_FROM_NUMBER", "0151")])).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        let err = SmsConfig::from_env(env(&[
            base[0],
            base[1],
            ("TWILIO_FROM_NUMBER", "+4915112345678"),
            ("TWILIO_MESSAGING_SERVICE_SID", "MG1"),
        ]))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    }

    #[test]
    fn default_base_url_is_slack() {
        let cfg = SlackConfig::from_env(env(&[("SLACK_SIGNING_SECRET", "a"), ("SLACK_BOT_TOKEN", "b")])).unwrap();
        assert_eq!(cfg.api_base, "https://slack.com/api");
    }
}
