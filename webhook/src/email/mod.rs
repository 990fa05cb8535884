//! Email by a Mailgun-style provider: the signed inbound route (HMAC over timestamp and token,
//! a freshness window and a persisted replay cache) and the splitter that keeps the person's
//! reply apart from the quoted history.

pub mod inbound;
pub mod reply_text;
pub mod signature;
pub mod store;
