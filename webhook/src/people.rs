//! Who this installation serves, at the channel edge: every inbound message, command and button
//! click is admitted here before the engine or the goals module sees it (see
//! `wellbeing_assistant::people` for the rules).

use wellbeing_assistant::Store;
use wellbeing_assistant::people::{self, EnrolError, Identity, PersonConfig};

/// The served people and whether the first writer may still enrol.
#[derive(Clone, Debug)]
pub struct ServedPeople {
    store: Store,
    /// Nobody is named in the configuration: the first person who writes is enrolled.
    open: bool,
}

impl ServedPeople {
    /// Enrol the configured people (`people` empty: enrolment is left to the first writer).
    pub fn start(store: Store, configured: &[PersonConfig]) -> Result<ServedPeople, EnrolError> {
        let now = wellbeing_assistant::store::now_rfc3339();
        if !configured.is_empty() {
            let ids = people::enrol(&mut store.conn(), configured, &now)?;
            tracing::info!(people = ids.len(), "serving the configured people");
        } else {
            let known = people::list(&store.conn())?.len();
            if known == 0 {
                tracing::warn!(
                    "nobody is named (WELLBEING_PEOPLE, SLACK_USER_ID): the first person who writes is the one served"
                );
            }
        }
        Ok(ServedPeople { store, open: configured.is_empty() })
    }

    /// The person `identity` is, enrolling them when nobody is served yet and nobody was named.
    /// None: someone this installation does not serve.
    pub async fn admit(&self, identity: Identity) -> Result<Option<String>, AdmitError> {
        let (store, open) = (self.store.clone(), self.open);
        tokio::task::spawn_blocking(move || {
            let now = wellbeing_assistant::store::now_rfc3339();
            people::admit(&mut store.conn(), &identity, open, &now)
        })
        .await
        .map_err(AdmitError::Join)?
        .map_err(AdmitError::Store)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error("failed to look up who wrote")]
    Store(#[source] wellbeing_assistant::StoreError),
    #[error("the look-up of who wrote did not finish")]
    Join(#[source] tokio::task::JoinError),
}
