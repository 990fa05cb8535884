//! SMS through Twilio: the Messaging webhook (signature, keywords, inbox rows keyed by
//! `MessageSid`), replies and proactive messages through the REST API with segment-aware length,
//! and the STOP list that nothing is ever sent past.

pub mod actions;
pub mod client;
pub mod inbound;
pub mod keywords;
pub mod opt_out;
pub mod outbound;
pub mod segments;
pub mod signature;
