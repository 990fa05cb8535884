//! People the assistant serves and the identities (channel + address) they write from.
//!
//! Who is served is explicit: the people named in the configuration (`WELLBEING_PEOPLE`, or
//! `SLACK_USER_ID` for one Slack person, or the local user of `wellbeing up`) are enrolled at
//! start-up. When nobody is named and nobody is enrolled yet, the first person who writes is
//! enrolled and is from then on the only one served. Anyone else gets a polite refusal and
//! nothing they wrote is stored: [`admit`] decides, the channel edge (webhook worker, local page)
//! acts on the decision before anything reaches the engine.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};
use wellbeing_crds::persona::Channel;

use crate::store::StoreError;

/// What someone the installation does not serve is told; nothing they wrote is kept.
pub const NOT_SERVED_REPLY: &str = "Hi! I'm a personal wellbeing assistant set up for someone else, so I \
can't keep a record for you. Nothing you wrote has been stored.";

/// The channel's name as stored (`identities.channel`, `interactions.channel`).
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Slack => "slack",
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Local => "local",
    }
}

fn parse_channel(name: &str) -> Option<Channel> {
    [Channel::Slack, Channel::Sms, Channel::Email, Channel::Local].into_iter().find(|c| channel_name(*c) == name)
}

/// The Slack workspace of an identity configured without one (`SLACK_USER_ID` alone).
pub const ANY_TEAM: &str = "*";

/// A channel and an address on it: who wrote, or where to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub channel: Channel,
    /// slack: "TEAM:USER"; sms: E.164; email: lowercased; local: the local user's name.
    pub address: String,
}

/// Why an identity or a people list could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdentityError {
    #[error("{0:?} is not an identity: expected slack:TEAM:USER, slack:USER, sms:+NUMBER, email:ADDRESS or local:NAME")]
    Shape(String),
    #[error("{0:?} is not a phone number in E.164 form (+ and 8 to 15 digits)")]
    Phone(String),
    #[error("{0:?} is not an email address")]
    Email(String),
    #[error("{0:?} is not a Slack user id (U… or W…)")]
    SlackUser(String),
    #[error("person {0:?}: a name is letters, digits, '-', '_' or '.', at most 63 characters")]
    Name(String),
    #[error("person {0:?} has no identity: give at least one after '='")]
    NoIdentity(String),
    #[error("{identity} is named for both {first} and {second}")]
    Twice { identity: String, first: String, second: String },
}

impl Identity {
    pub fn slack(team: Option<&str>, user: &str) -> Identity {
        Identity { channel: Channel::Slack, address: format!("{}:{user}", team.unwrap_or(ANY_TEAM)) }
    }

    pub fn local(name: &str) -> Identity {
        Identity { channel: Channel::Local, address: name.to_string() }
    }

    /// The Slack user id of a Slack identity.
    pub fn slack_user(&self) -> Option<&str> {
        (self.channel == Channel::Slack).then(|| self.address.rsplit(':').next()).flatten()
    }

    /// The key `channel:address`, e.g. "slack:T1:U1": how people created from an identity are named.
    pub fn key(&self) -> String {
        format!("{}:{}", channel_name(self.channel), self.address)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    /// `slack:TEAM:USER`, `slack:USER` (any workspace), `sms:+4915112345678`, `email:a@b.org`,
    /// `local:me`.
    fn from_str(s: &str) -> Result<Identity, IdentityError> {
        let shape = || IdentityError::Shape(s.to_string());
        let (channel, rest) = s.trim().split_once(':').ok_or_else(shape)?;
        let channel = parse_channel(channel).ok_or_else(shape)?;
        let address = match channel {
            Channel::Slack => {
                let (team, user) = match rest.split_once(':') {
                    Some((team, user)) => (team, user),
                    None => (ANY_TEAM, rest),
                };
                let id_like = |v: &str| !v.is_empty() && v.len() <= 32 && v.chars().all(|c| c.is_ascii_alphanumeric());
                if !(user.starts_with('U') || user.starts_with('W')) || !id_like(user) {
                    return Err(IdentityError::SlackUser(user.to_string()));
                }
                if team != ANY_TEAM && !id_like(team) {
                    return Err(shape());
                }
                format!("{team}:{user}")
            }
            Channel::Sms => {
                let digits = rest.strip_prefix('+').unwrap_or("");
                if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err(IdentityError::Phone(rest.to_string()));
                }
                rest.to_string()
            }
            Channel::Email => {
                let lower = rest.to_ascii_lowercase();
                match lower.split_once('@') {
                    Some((local, domain))
                        if !local.is_empty() && domain.contains('.') && !lower.contains(char::is_whitespace) =>
                    {
                        lower
                    }
                    _ => return Err(IdentityError::Email(rest.to_string())),
                }
            }
            Channel::Local => {
                if rest.is_empty() {
                    return Err(shape());
                }
                rest.to_string()
            }
        };
        Ok(Identity { channel, address })
    }
}

/// One person named in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonConfig {
    /// The id a newly enrolled person gets. A person already known by one of the identities
    /// keeps the id they have.
    pub name: String,
    pub identities: Vec<Identity>,
}

/// Read `WELLBEING_PEOPLE`: `NAME=IDENTITY[,IDENTITY...]`, people separated by `;`, e.g.
/// `ana=slack:T1:U1,sms:+4915112345678;bo=email:bo@example.org`.
pub fn parse_people(spec: &str) -> Result<Vec<PersonConfig>, IdentityError> {
    let mut people: Vec<PersonConfig> = Vec::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, identities) = entry.split_once('=').ok_or_else(|| IdentityError::NoIdentity(entry.to_string()))?;
        let name = name.trim();
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(IdentityError::Name(name.to_string()));
        }
        let identities = identities
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(Identity::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        if identities.is_empty() {
            return Err(IdentityError::NoIdentity(name.to_string()));
        }
        for identity in &identities {
            if let Some(first) = people.iter().find(|p| p.identities.contains(identity)) {
                return Err(IdentityError::Twice {
                    identity: identity.to_string(),
                    first: first.name.clone(),
                    second: name.to_string(),
                });
            }
        }
        people.push(PersonConfig { name: name.to_string(), identities });
    }
    Ok(people)
}

/// What to do with a message from an identity. Pure: [`admit`] gathers the facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A person this installation serves.
    Person(String),
    /// Nobody is served yet and nobody was named: this writer becomes the person served.
    Enroll,
    /// Someone else: a polite refusal, nothing stored.
    Refuse,
}

/// The decision for a writer known as `known` (None: no identity matches) when `people` people
/// are enrolled and `open` says whether the configuration leaves enrolment to the first writer.
pub fn decide(known: Option<String>, people: usize, open: bool) -> Admission {
    match known {
        Some(person) => Admission::Person(person),
        None if open && people == 0 => Admission::Enroll,
        None => Admission::Refuse,
    }
}

/// The person an identity belongs to. A Slack identity configured without its workspace
/// (`*:USER`) matches the user in any workspace and learns the workspace on first contact.
pub fn resolve(conn: &Connection, identity: &Identity) -> Result<Option<String>, StoreError> {
    let channel = channel_name(identity.channel);
    let found: Option<String> = conn
        .query_row(
            "SELECT person_id FROM identities WHERE channel = ?1 AND address = ?2",
            params![channel, identity.address],
            |r| r.get(0),
        )
        .optional()?;
    if found.is_some() {
        return Ok(found);
    }
    let Some(user) = identity.slack_user() else { return Ok(None) };
    let wildcard = format!("{ANY_TEAM}:{user}");
    if wildcard == identity.address {
        return Ok(None);
    }
    let person: Option<String> = conn
        .query_row(
            "SELECT person_id FROM identities WHERE channel = 'slack' AND address = ?1",
            params![wildcard],
            |r| r.get(0),
        )
        .optional()?;
    if person.is_some() {
        conn.execute(
            "UPDATE identities SET address = ?2 WHERE channel = 'slack' AND address = ?1",
            params![wildcard, identity.address],
        )?;
    }
    Ok(person)
}

/// Admit or refuse a writer, enrolling them when [`decide`] says so. Returns the person's id,
/// or None for a refusal.
pub fn admit(conn: &mut Connection, identity: &Identity, open: bool, now: &str) -> Result<Option<String>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let known = resolve(&tx, identity)?;
    let count: i64 = tx.query_row("SELECT COUNT(*) FROM people", [], |r| r.get(0))?;
    let person = match decide(known, usize::try_from(count).unwrap_or(usize::MAX), open) {
        Admission::Person(person) => Some(person),
        Admission::Enroll => {
            let person = identity.key();
            insert_person(&tx, &person, now)?;
            link(&tx, &person, identity, now)?;
            tracing::info!(channel = channel_name(identity.channel), "the first person to write is now the one served");
            Some(person)
        }
        Admission::Refuse => None,
    };
    tx.commit()?;
    Ok(person)
}

fn insert_person(conn: &Connection, person: &str, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO people (person_id, created_at) VALUES (?1, ?2) ON CONFLICT (person_id) DO NOTHING",
        params![person, now],
    )?;
    Ok(())
}

fn link(conn: &Connection, person: &str, identity: &Identity, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO identities (channel, address, person_id, first_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (channel, address) DO NOTHING",
        params![channel_name(identity.channel), identity.address, person, now],
    )?;
    Ok(())
}

/// Why the configured people could not be enrolled.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(
        "{identity} belongs to person {existing:?} and {other} to person {other_person:?}: one configured person cannot be two stored people"
    )]
    Split { identity: String, existing: String, other: String, other_person: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for EnrolError {
    fn from(e: rusqlite::Error) -> EnrolError {
        EnrolError::Store(StoreError::from(e))
    }
}

/// Make sure every configured person exists with all their identities. A person already known by
/// one of the identities keeps their id (and history); otherwise they are created under their
/// configured name. Returns the ids, in the configuration's order.
pub fn enrol(conn: &mut Connection, people: &[PersonConfig], now: &str) -> Result<Vec<String>, EnrolError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut ids = Vec::new();
    for person in people {
        let mut existing: Option<(String, &Identity)> = None;
        for identity in &person.identities {
            if let Some(found) = resolve(&tx, identity)? {
                match &existing {
                    Some((id, first)) if *id != found => {
                        return Err(EnrolError::Split {
                            identity: first.to_string(),
                            existing: id.clone(),
                            other: identity.to_string(),
                            other_person: found,
                        });
                    }
                    Some(_) => {}
                    None => existing = Some((found, identity)),
                }
            }
        }
        let id = existing.map_or_else(|| person.name.clone(), |(id, _)| id);
        insert_person(&tx, &id, now)?;
        for identity in &person.identities {
            link(&tx, &id, identity, now)?;
        }
        ids.push(id);
    }
    tx.commit()?;
    Ok(ids)
}

/// Every person served, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT person_id FROM people ORDER BY created_at, person_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A person's identities on one channel, oldest first, with the private conversation when known.
pub fn identities_on(
    conn: &Connection,
    person: &str,
    channel: Channel,
) -> Result<Vec<(Identity, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT address, private_ref FROM identities WHERE person_id = ?1 AND channel = ?2 ORDER BY first_seen, address",
    )?;
    let rows = stmt.query_map(params![person, channel_name(channel)], |r| {
        Ok((Identity { channel, address: r.get(0)? }, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// All of a person's identities, oldest first, with the private conversation when known.
pub fn identities_of(conn: &Connection, person: &str) -> Result<Vec<(Identity, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT channel, address, private_ref FROM identities WHERE person_id = ?1 ORDER BY first_seen, channel, address",
    )?;
    let rows = stmt.query_map(params![person], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (channel, address, private_ref) = row?;
        if let Some(channel) = parse_channel(&channel) {
            out.push((Identity { channel, address }, private_ref));
        }
    }
    Ok(out)
}

/// Remember the private conversation (Slack DM channel) of an identity.
pub fn set_private_ref(conn: &Connection, identity: &Identity, private_ref: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE identities SET private_ref = ?3 WHERE channel = ?1 AND address = ?2",
        params![channel_name(identity.channel), identity.address, private_ref],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const NOW: &str = "2026-05-08T10:00:00Z";

    #[test]
    fn identities_parse_in_every_documented_form_and_refuse_the_rest() {
        assert_eq!("slack:T1:U1".parse(), Ok(Identity::slack(Some("T1"), "U1")));
        assert_eq!("slack:U1".parse(), Ok(Identity::slack(None, "U1")));
        assert_eq!("email:Ana@Example.org".parse::<Identity>().unwrap().address, "ana@example.org");
        assert_eq!("sms:+4915112345678".parse::<Identity>().unwrap().address, "+4915112345678");
        assert_eq!("local:me".parse(), Ok(Identity::local("me")));
        assert!(matches!("sms:015112345678".parse::<Identity>(), Err(IdentityError::Phone(_))));
        assert!(matches!("email:nobody".parse::<Identity>(), Err(IdentityError::Email(_))));
        assert!(matches!("slack:T1:C1".parse::<Identity>(), Err(IdentityError::SlackUser(_))));
        assert!(matches!("fax:123".parse::<Identity>(), Err(IdentityError::Shape(_))));
        assert_eq!(Identity::slack(Some("T1"), "U1").slack_user(), Some("U1"));
    }

    #[test]
    fn a_people_list_names_each_person_once_with_their_identities() {
        let people = parse_people("ana=slack:T1:U1, sms:+4915112345678; bo=email:bo@example.org").unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].name, "ana");
        assert_eq!(people[0].identities.len(), 2);
        assert_eq!(people[1].identities, ["email:bo@example.org".parse().unwrap()]);
        assert!(matches!(parse_people("ana"), Err(IdentityError::NoIdentity(_))));
        assert!(matches!(parse_people("a b=local:me"), Err(IdentityError::Name(_))));
        assert!(matches!(parse_people("ana=local:me;bo=local:me"), Err(IdentityError::Twice { .. })));
        assert_eq!(parse_people("").unwrap(), []);
    }

    #[test]
    fn the_first_writer_is_enrolled_only_when_nobody_is_named_or_served() {
        assert_eq!(decide(Some("ana".into()), 1, false), Admission::Person("ana".into()));
        assert_eq!(decide(None, 0, true), Admission::Enroll);
        assert_eq!(decide(None, 1, true), Admission::Refuse, "someone is served already");
        assert_eq!(decide(None, 0, false), Admission::Refuse, "people are named: only they");
    }

    #[test]
    fn the_first_writer_is_served_and_the_next_refused() {
        let store = Store::in_memory().unwrap();
        let mut conn = store.conn();
        let ana = Identity::slack(Some("T1"), "U1");
        assert_eq!(admit(&mut conn, &ana, true, NOW).unwrap().as_deref(), Some("slack:T1:U1"));
        assert_eq!(admit(&mut conn, &ana, true, NOW).unwrap().as_deref(), Some("slack:T1:U1"));
        assert_eq!(admit(&mut conn, &Identity::slack(Some("T1"), "U2"), true, NOW).unwrap(), None);
        assert_eq!(list(&conn).unwrap(), ["slack:T1:U1"]);
    }

    #[test]
    fn configured_people_keep_their_history_and_a_workspace_is_learned() {
        let store = Store::in_memory().unwrap();
        let mut conn = store.conn();
        // Someone served before the people table existed keeps their id.
        let ana = Identity::slack(Some("T1"), "U1");
        admit(&mut conn, &ana, true, NOW).unwrap();
        let people = parse_people("ana=slack:T1:U1,sms:+4915112345678;bo=slack:U2").unwrap();
        let ids = enrol(&mut conn, &people, NOW).unwrap();
        assert_eq!(ids, ["slack:T1:U1", "bo"]);
        let by_phone = Identity { channel: Channel::Sms, address: "+4915112345678".into() };
        assert_eq!(resolve(&conn, &by_phone).unwrap().as_deref(), Some("slack:T1:U1"), "one person, two channels");
        // bo was named without a workspace: the first message from T9 settles it.
        assert_eq!(admit(&mut conn, &Identity::slack(Some("T9"), "U2"), false, NOW).unwrap().as_deref(), Some("bo"));
        let on_slack = identities_on(&conn, "bo", Channel::Slack).unwrap();
        assert_eq!(on_slack[0].0, Identity::slack(Some("T9"), "U2"));
        // Enrolling again changes nothing.
        assert_eq!(enrol(&mut conn, &people, NOW).unwrap(), ["slack:T1:U1", "bo"]);
        // One configured person whose identities are two stored people is refused.
        let split = parse_people("x=slack:T1:U1,slack:T9:U2").unwrap();
        assert!(matches!(enrol(&mut conn, &split, NOW), Err(EnrolError::Split { .. })));
    }

    #[test]
    fn the_migration_turns_users_into_people_with_their_identities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)").unwrap();
            for m in crate::store::MIGRATIONS.iter().filter(|m| m.version <= 4) {
                conn.execute_batch(m.sql).unwrap();
                conn.execute("INSERT INTO schema_migrations VALUES (?1, ?2, ?3)", params![m.version, m.name, NOW])
                    .unwrap();
            }
            conn.execute(
                "INSERT INTO users (user_id, channel, dm_channel, first_seen, disclaimer_shown)
                 VALUES ('slack:T1:U1', 'slack', 'D1', ?1, 1), ('local:me', 'local', NULL, ?1, 0)",
                [NOW],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let conn = store.conn();
        assert_eq!(list(&conn).unwrap().len(), 2);
        let slack = identities_on(&conn, "slack:T1:U1", Channel::Slack).unwrap();
        assert_eq!(slack, [(Identity::slack(Some("T1"), "U1"), Some("D1".to_string()))]);
        assert_eq!(resolve(&conn, &Identity::local("me")).unwrap().as_deref(), Some("local:me"));
        let shown: i64 = conn
            .query_row("SELECT disclaimer_shown FROM people WHERE person_id = 'slack:T1:U1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(shown, 1);
    }
}
