//! Bearer authentication of the internal API (`/internal/*`): a shared token for embedded use, or
//! a Kubernetes ServiceAccount token checked with a TokenReview for the check-in Jobs' audience.
//! Positive reviews are cached briefly so a burst of calls costs one review.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The audience check-in Jobs request for their projected token (set by the operator).
pub const DEFAULT_AUDIENCE: &str = "wellbeing-assistant";
/// How long a positive review is trusted. Short: a deleted ServiceAccount loses access quickly.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Bound on cached reviews; only a handful of Jobs ever call.
const CACHE_MAX: usize = 1024;

/// What the API server said about a token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Review {
    pub authenticated: bool,
    pub username: String,
    pub audiences: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("failed to create a TokenReview")]
    Kube(#[source] kube::Error),
    #[error("the TokenReview came back without a status")]
    NoStatus,
}

/// Asks the API server whether a token is valid for an audience.
#[async_trait]
pub trait TokenReviewer: Send + Sync {
    async fn review(&self, token: &str, audience: &str) -> Result<Review, ReviewError>;
}

/// TokenReview (authentication.k8s.io/v1) through the kube client.
pub struct KubeTokenReviewer {
    client: kube::Client,
}

impl KubeTokenReviewer {
    pub fn new(client: kube::Client) -> Self {
        KubeTokenReviewer { client }
    }
}

#[async_trait]
impl TokenReviewer for KubeTokenReviewer {
    async fn review(&self, token: &str, audience: &str) -> Result<Review, ReviewError> {
        let api: kube::Api<TokenReview> = kube::Api::all(self.client.clone());
        let request = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), audiences: Some(vec![audience.to_string()]) },
            ..Default::default()
        };
        let answer = api.create(&kube::api::PostParams::default(), &request).await.map_err(ReviewError::Kube)?;
        let status = answer.status.ok_or(ReviewError::NoStatus)?;
        Ok(Review {
            authenticated: status.authenticated.unwrap_or(false),
            username: status.user.and_then(|u| u.username).unwrap_or_default(),
            audiences: status.audiences.unwrap_or_default(),
            error: status.error,
        })
    }
}

/// Who may call the internal API once their token checks out.
#[derive(Debug, Clone, Default)]
pub struct AllowedCallers {
    /// Only ServiceAccounts of this namespace (the assistant's own); any namespace when unset.
    pub namespace: Option<String>,
    /// Only these ServiceAccount names; any when empty.
    pub service_accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    SharedToken,
    ServiceAccount { namespace: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("missing bearer token")]
    NoToken,
    #[error("token not accepted")]
    BadToken,
    #[error("token is not for audience {0}")]
    WrongAudience(String),
    #[error("{0} may not call the internal API")]
    NotAllowed(String),
    #[error("failed to review the token")]
    ReviewFailed,
}

impl Denied {
    /// 401 for credentials that do not check out, 403 for a valid caller that is not allowed,
    /// 503 when the API server could not be asked.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Denied::NoToken | Denied::BadToken | Denied::WrongAudience(_) => http::StatusCode::UNAUTHORIZED,
            Denied::NotAllowed(_) => http::StatusCode::FORBIDDEN,
            Denied::ReviewFailed => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Pure: is this review an allowed caller?
pub fn decide(review: &Review, audience: &str, allowed: &AllowedCallers) -> Result<Caller, Denied> {
    if !review.authenticated {
        return Err(Denied::BadToken);
    }
    // The API server only answers authenticated for a token whose audience intersects the
    // requested one, and lists the intersection; check it anyway rather than trust the shape.
    if !review.audiences.iter().any(|a| a == audience) {
        return Err(Denied::WrongAudience(audience.to_string()));
    }
    let Some(rest) = review.username.strip_prefix("system:serviceaccount:") else {
        return Err(Denied::NotAllowed(review.username.clone()));
    };
    let Some((namespace, name)) = rest.split_once(':') else {
        return Err(Denied::NotAllowed(review.username.clone()));
    };
    if allowed.namespace.as_deref().is_some_and(|ns| ns != namespace)
        || (!allowed.service_accounts.is_empty() && !allowed.service_accounts.iter().any(|sa| sa == name))
    {
        return Err(Denied::NotAllowed(review.username.clone()));
    }
    Ok(Caller::ServiceAccount { namespace: namespace.to_string(), name: name.to_string() })
}

/// The internal API's authenticator.
pub struct InternalAuth {
    shared_token: Option<String>,
    reviewer: Option<Arc<dyn TokenReviewer>>,
    audience: String,
    allowed: AllowedCallers,
    cache: Mutex<HashMap<[u8; 32], (Instant, Caller)>>,
}

impl std::fmt::Debug for InternalAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalAuth")
            .field("shared_token", &self.shared_token.as_ref().map(|_| "<redacted>"))
            .field("token_review", &self.reviewer.is_some())
            .field("audience", &self.audience)
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl InternalAuth {
    pub fn new(
        shared_token: Option<String>,
        reviewer: Option<Arc<dyn TokenReviewer>>,
        audience: impl Into<String>,
        allowed: AllowedCallers,
    ) -> InternalAuth {
        let shared_token = shared_token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        InternalAuth { shared_token, reviewer, audience: audience.into(), allowed, cache: Mutex::new(HashMap::new()) }
    }

    /// Nobody can call: no shared token and no TokenReview.
    pub fn is_closed(&self) -> bool {
        self.shared_token.is_none() && self.reviewer.is_none()
    }

    /// Check an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Denied> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::NoToken)?;
        if let Some(shared) = &self.shared_token
            && bool::from(shared.as_bytes().ct_eq(token.as_bytes()))
        {
            return Ok(Caller::SharedToken);
        }
        let Some(reviewer) = &self.reviewer else { return Err(Denied::BadToken) };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(caller) = self.cached(&key) {
            return Ok(caller);
        }
        let review = reviewer.review(token, &self.audience).await.map_err(|error| {
            tracing::warn!(error = %error, "token review failed");
            Denied::ReviewFailed
        })?;
        let caller = decide(&review, &self.audience, &self.allowed)?;
        self.remember(key, caller.clone());
        Ok(caller)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Caller> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, caller)| caller.clone())
    }

    fn remember(&self, key: [u8; 32], caller: Caller) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), caller));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn review(user: &str, audiences: &[&str]) -> Review {
        Review {
            authenticated: true,
            username: user.into(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            error: None,
        }
    }

    #[test]
    fn decide_checks_authentication_audience_and_caller() {
        let allowed = AllowedCallers { namespace: Some("wellbeing".into()), service_accounts: vec![] };
        let sa = "system:serviceaccount:wellbeing:wellbeing-checkin";
        assert_eq!(
            decide(&review(sa, &[DEFAULT_AUDIENCE]), DEFAULT_AUDIENCE, &allowed),
            Ok(Caller::ServiceAccount { namespace: "wellbeing".into(), name: "wellbeing-checkin".into() })
        );
        assert_eq!(
            decide(&Review { authenticated: false, ..review(sa, &[DEFAULT_AUDIENCE]) }, DEFAULT_AUDIENCE, &allowed),
            Err(Denied::BadToken)
        );
        assert!(matches!(
            decide(&review(sa, &["https://kubernetes.default.svc"]), DEFAULT_AUDIENCE, &allowed),
            Err(Denied::WrongAudience(_))
        ));
        assert!(matches!(
            decide(&review("system:serviceaccount:other:x", &[DEFAULT_AUDIENCE]), DEFAULT_AUDIENCE, &allowed),
            Err(Denied::NotAllowed(_))
        ));
        assert!(matches!(
            decide(&review("alice", &[DEFAULT_AUDIENCE]), DEFAULT_AUDIENCE, &allowed),
            Err(Denied::NotAllowed(_))
        ));
        let only = AllowedCallers { namespace: None, service_accounts: vec!["checkin".into()] };
        assert!(
            decide(&review("system:serviceaccount:any:checkin", &[DEFAULT_AUDIENCE]), DEFAULT_AUDIENCE, &only).is_ok()
        );
        assert!(
            decide(&review("system:serviceaccount:any:other", &[DEFAULT_AUDIENCE]), DEFAULT_AUDIENCE, &only).is_err()
        );
    }

    struct CountingReviewer(AtomicUsize);

    #[async_trait]
    impl TokenReviewer for CountingReviewer {
        async fn review(&self, token: &str, audience: &str) -> Result<Review, ReviewError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if token == "good" {
                Ok(review("system:serviceaccount:wellbeing:checkin", &[audience]))
            } else {
                Ok(Review { authenticated: false, error: Some("invalid bearer token".into()), ..Review::default() })
            }
        }
    }

    #[tokio::test]
    async fn positive_reviews_are_cached_and_negative_ones_are_not() {
        let reviewer = Arc::new(CountingReviewer(AtomicUsize::new(0)));
        let auth = InternalAuth::new(None, Some(reviewer.clone()), DEFAULT_AUDIENCE, AllowedCallers::default());
        for _ in 0..3 {
            assert!(auth.authenticate(Some("Bearer good")).await.is_ok());
        }
        assert_eq!(reviewer.0.load(Ordering::SeqCst), 1);
        for _ in 0..2 {
            assert_eq!(auth.authenticate(Some("Bearer bad")).await, Err(Denied::BadToken));
        }
        assert_eq!(reviewer.0.load(Ordering::SeqCst), 3);
        assert_eq!(auth.authenticate(None).await, Err(Denied::NoToken));
        assert_eq!(auth.authenticate(Some("Basic abc")).await, Err(Denied::NoToken));
    }

    #[tokio::test]
    async fn the_shared_token_needs_no_review() {
        let auth = InternalAuth::new(Some("s3cret\n".into()), None, DEFAULT_AUDIENCE, AllowedCallers::default());
        assert_eq!(auth.authenticate(Some("Bearer s3cret")).await, Ok(Caller::SharedToken));
        assert_eq!(auth.authenticate(Some("Bearer s3cre")).await, Err(Denied::BadToken));
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(InternalAuth::new(None, None, DEFAULT_AUDIENCE, AllowedCallers::default()).is_closed());
    }

    /// The kube implementation sends a TokenReview with the audience and reads its status.
    #[tokio::test]
    async fn kube_reviewer_posts_a_token_review() {
        use http_body_util::BodyExt;
        let (service, mut handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        let client = kube::Client::new(service, "default");
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("a request");
            assert_eq!(request.method(), http::Method::POST);
            assert_eq!(request.uri().path(), "/apis/authentication.k8s.io/v1/tokenreviews");
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(sent["spec"]["token"], "jwt");
            assert_eq!(sent["spec"]["audiences"], serde_json::json!([DEFAULT_AUDIENCE]));
            let answer = serde_json::json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {},
                "spec": sent["spec"],
                "status": {"authenticated": true, "audiences": [DEFAULT_AUDIENCE],
                           "user": {"username": "system:serviceaccount:wellbeing:checkin", "uid": "1"}}
            });
            send.send_response(
                http::Response::builder()
                    .status(201)
                    .body(kube::client::Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        });
        let review = KubeTokenReviewer::new(client).review("jwt", DEFAULT_AUDIENCE).await.unwrap();
        server.await.unwrap();
        assert!(review.authenticated);
        assert_eq!(review.username, "system:serviceaccount:wellbeing:checkin");
    }
}
