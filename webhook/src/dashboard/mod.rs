//! `/dashboard`: the user's data as a server-rendered page with SVG charts, behind a token.
//!
//! The token is generated at first start and kept in the data dir as `dashboard-token` (0600).
//! It is accepted as `Authorization: Bearer <token>`, or through the login form (or a login link
//! `/dashboard/login?token=...`, as Jupyter does) which sets an HttpOnly cookie. The cookie holds
//! an HMAC of the token, not the token itself.

pub mod data;
pub mod html;
pub mod svg;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wellbeing_assistant::Store;

pub use data::DashboardContext;

/// File name of the token inside the data dir.
pub const TOKEN_FILE: &str = "dashboard-token";
const COOKIE_NAME: &str = "wellbeing_dashboard";
/// A browser session lasts a month; the token itself does not expire.
const COOKIE_MAX_AGE_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("failed to read dashboard token {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create dashboard token {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dashboard token {path} is empty; delete it to generate a new one")]
    Empty { path: PathBuf },
}

/// Read the dashboard token from the data dir, creating it (32 random bytes, hex, mode 0600) on
/// first start. An existing file's mode is tightened to 0600.
pub fn load_or_create_token(data_dir: &Path) -> Result<String, TokenError> {
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            restrict(&path).map_err(|source| TokenError::Read { path: path.clone(), source })?;
            let token = text.trim().to_string();
            if token.is_empty() {
                return Err(TokenError::Empty { path });
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = wellbeing_common::id::new_token();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&path).map_err(|source| TokenError::Create { path: path.clone(), source })?;
            f.write_all(format!("{token}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|source| TokenError::Create { path: path.clone(), source })?;
            tracing::info!(path = %path.display(), "created the dashboard token");
            Ok(token)
        }
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode != 0o600 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Supplies the live persona, goals and missing secret names at request time.
pub type ContextFn = Arc<dyn Fn() -> DashboardContext + Send + Sync>;

/// The dashboard's own state, so it can be merged into any router.
#[derive(Clone)]
pub struct DashboardState {
    pub store: Store,
    token: Arc<String>,
    session: Arc<String>,
    pub context: ContextFn,
    pub clock: crate::app::Clock,
}

impl DashboardState {
    pub fn new(store: Store, token: String, context: ContextFn) -> DashboardState {
        let session = session_value(&token);
        DashboardState {
            store,
            token: Arc::new(token),
            session: Arc::new(session),
            context,
            clock: crate::app::system_clock(),
        }
    }

    pub fn with_clock(mut self, clock: crate::app::Clock) -> DashboardState {
        self.clock = clock;
        self
    }

    fn token_matches(&self, candidate: &str) -> bool {
        bool::from(candidate.trim().as_bytes().ct_eq(self.token.as_bytes()))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.token_matches(t));
        bearer
            || headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().strip_prefix(&format!("{COOKIE_NAME}=")).map(str::to_string))
                .any(|v| bool::from(v.as_bytes().ct_eq(self.session.as_bytes())))
    }
}

/// The cookie value: an HMAC of a fixed label under the token, so a leaked cookie does not reveal
/// the token, and changing the token signs everyone out.
fn session_value(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"wellbeing-dashboard-session-v1");
    hex::encode(mac.finalize().into_bytes())
}

/// The dashboard routes, with their state applied, mergeable into any `Router<S>`.
pub fn router<S: Clone + Send + Sync + 'static>(state: DashboardState) -> Router<S> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(page))
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", axum::routing::post(logout))
        .with_state(state)
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Wellbeing data: never cached, never framed, no scripts or outside resources at all.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

fn redirect(to: &'static str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(LOCATION, HeaderValue::from_static(to));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

#[derive(Deserialize, Default)]
struct PageQuery {
    user: Option<String>,
}

/// `GET /dashboard`.
#[tracing::instrument(skip_all)]
async fn page(State(state): State<DashboardState>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    if !state.authorized(&headers) {
        let wants_html = headers.get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
        return if wants_html || headers.get(AUTHORIZATION).is_none() {
            redirect("/dashboard/login", None)
        } else {
            (StatusCode::UNAUTHORIZED, "invalid dashboard token").into_response()
        };
    }
    let ctx = (state.context)();
    let now = state.clock.now();
    let store = state.store.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        data::load(&store, q.user.as_deref(), &ctx, now).map(|d| html::dashboard_page(&d))
    })
    .await;
    match rendered {
        Ok(Ok(body)) => html(StatusCode::OK, body),
        Ok(Err(error)) => {
            tracing::error!(error = %error, "failed to read the dashboard data");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                html::login_page(Some("The dashboard could not read the database.")),
            )
        }
        Err(_) => html(StatusCode::INTERNAL_SERVER_ERROR, html::login_page(Some("The dashboard failed."))),
    }
}

#[derive(Deserialize, Default)]
struct LoginForm {
    token: Option<String>,
}

fn session_cookie(state: &DashboardState) -> String {
    format!(
        "{COOKIE_NAME}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}",
        state.session
    )
}

fn try_login(state: &DashboardState, token: Option<&str>) -> Response {
    match token {
        Some(t) if state.token_matches(t) => redirect("/dashboard", Some(session_cookie(state))),
        _ => {
            tracing::info!("refused a dashboard sign-in with a wrong token");
            html(StatusCode::UNAUTHORIZED, html::login_page(Some("That token is not right.")))
        }
    }
}

/// `GET /dashboard/login`: the form, or a login link with `?token=` (redirects to drop the token
/// from the address bar).
async fn login_form(State(state): State<DashboardState>, Query(q): Query<LoginForm>) -> Response {
    match q.token {
        Some(t) => try_login(&state, Some(&t)),
        None => html(StatusCode::OK, html::login_page(None)),
    }
}

/// `POST /dashboard/login`.
async fn login(State(state): State<DashboardState>, Form(form): Form<LoginForm>) -> Response {
    try_login(&state, form.token.as_deref())
}

/// `POST /dashboard/logout`.
async fn logout() -> Response {
    redirect("/dashboard/login", Some(format!("{COOKIE_NAME}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn persona() -> wellbeing_crds::PersonaSpec {
        serde_json::from_value(serde_json::json!({
            "displayName": "Sam",
            "checkIns": { "timeZone": "Europe/Berlin", "windows": [{ "start": "09:00", "end": "21:00" }] }
        }))
        .unwrap()
    }

    fn state() -> DashboardState {
        let ctx = DashboardContext { persona: persona(), goals: vec![], missing_secrets: vec!["weather-key".into()] };
        DashboardState::new(Store::in_memory().unwrap(), "s3cret-token".into(), Arc::new(move || ctx.clone()))
    }

    async fn send(app: Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let r = app.oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        (parts.status, parts.headers, String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap())
    }

    #[tokio::test]
    async fn bearer_token_opens_the_page_and_a_wrong_one_does_not() {
        let app: Router = router(state());
        let get = |auth: &str| Request::get("/dashboard").header("authorization", auth).body(Body::empty()).unwrap();
        let (status, headers, body) = send(app.clone(), get("Bearer s3cret-token")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert!(body.contains("class=\"chart mood-calendar\""));
        assert!(body.contains("weather-key"));
        let (status, _, body) = send(app.clone(), get("Bearer wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!body.contains("mood-calendar"));
        let (status, headers, _) = send(app, Request::get("/dashboard").body(Body::empty()).unwrap()).await;
        assert_eq!((status, headers[LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/dashboard/login"));
    }

    #[tokio::test]
    async fn login_form_sets_an_http_only_cookie_that_opens_the_page() {
        let app: Router = router(state());
        let post = Request::post("/dashboard/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("token=s3cret-token"))
            .unwrap();
        let (status, headers, _) = send(app.clone(), post).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let cookie = headers[SET_COOKIE].to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(!cookie.contains("s3cret-token"), "the cookie never carries the token");
        let pair = cookie.split(';').next().unwrap();
        let (status, _, body) = send(
            app.clone(),
            Request::get("/dashboard").header("cookie", format!("a=b; {pair}")).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("Wellbeing dashboard"));
        let forged = Request::get("/dashboard")
            .header("cookie", format!("{COOKIE_NAME}=s3cret-token"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(app.clone(), forged).await.0, StatusCode::SEE_OTHER);
        let wrong = Request::get("/dashboard/login?token=nope").body(Body::empty()).unwrap();
        assert_eq!(send(app.clone(), wrong).await.0, StatusCode::UNAUTHORIZED);
        let link = Request::get("/dashboard/login?token=s3cret-token").body(Body::empty()).unwrap();
        let (status, headers, _) = send(app, link).await;
        assert_eq!((status, headers[LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/dashboard"));
    }

    #[test]
    fn token_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let t = load_or_create_token(dir.path()).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), t);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(TOKEN_FILE);
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            load_or_create_token(dir.path()).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(TOKEN_FILE), "\n").unwrap();
        assert!(matches!(load_or_create_token(dir.path()), Err(TokenError::Empty { .. })));
        assert!(load_or_create_token(&dir.path().join("missing")).is_err());
    }
}
