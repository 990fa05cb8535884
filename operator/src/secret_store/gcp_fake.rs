//! Tests of the GCP store against a local Secret Manager that speaks the REST/JSON wire format
//! the official client uses (`/v1/projects/*/secrets...`, `$alt=json;enum-encoding=int`, errors
//! as `{"error": {"code", "message", "status"}}`).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use serde_json::{Value, json};

use super::{GcpStore, Presence, SecretStore, SecretValue, StoreError};

/// Version states as the API encodes them with `enum-encoding=int`.
const ENABLED: i32 = 1;
const DISABLED: i32 = 2;
const DESTROYED: i32 = 3;

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

#[derive(Default)]
struct Fake {
    /// secret id -> (versions: state, payload data as sent)
    secrets: BTreeMap<String, Vec<(i32, String)>>,
    requests: Vec<Recorded>,
    /// Answer every request with this status (code, STATUS) when set.
    fail_with: Option<(u16, &'static str)>,
}

type Shared = Arc<Mutex<Fake>>;

fn error(code: u16, status: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "status": status}});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (urlencoding_decode(k) == key).then(|| urlencoding_decode(v))
    })
}

fn urlencoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

async fn handle(State(fake): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let body_json: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() };
    let mut fake = fake.lock().unwrap();
    fake.requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: body_json.clone(),
    });
    if let Some((code, status)) = fake.fail_with {
        return error(code, status, "injected failure");
    }
    let Some(rest) = path.strip_prefix("/v1/projects/test-project/secrets") else {
        return error(404, "NOT_FOUND", "unknown project");
    };
    match (method, rest) {
        // create: POST /v1/projects/P/secrets?secretId=ID
        (Method::POST, "") => {
            let id = query_param(&query, "secretId").unwrap_or_default();
            if fake.secrets.contains_key(&id) {
                return error(409, "ALREADY_EXISTS", "Secret already exists");
            }
            assert!(body_json["replication"]["automatic"].is_object(), "automatic replication: {body_json}");
            fake.secrets.insert(id.clone(), Vec::new());
            axum::Json(json!({"name": format!("projects/test-project/secrets/{id}"),
                              "replication": {"automatic": {}}}))
            .into_response()
        }
        // add version: POST /v1/projects/P/secrets/ID:addVersion
        (Method::POST, rest) if rest.ends_with(":addVersion") => {
            let id = rest.trim_start_matches('/').trim_end_matches(":addVersion").to_string();
            let Some(versions) = fake.secrets.get_mut(&id) else {
                return error(404, "NOT_FOUND", "Secret not found");
            };
            let data = body_json["payload"]["data"].as_str().unwrap_or_default().to_string();
            versions.push((ENABLED, data));
            let n = versions.len();
            axum::Json(json!({"name": format!("projects/test-project/secrets/{id}/versions/{n}"), "state": ENABLED}))
                .into_response()
        }
        // list versions: GET /v1/projects/P/secrets/ID/versions?filter=...
        (Method::GET, rest) if rest.ends_with("/versions") => {
            let id = rest.trim_start_matches('/').trim_end_matches("/versions").to_string();
            let Some(versions) = fake.secrets.get(&id) else {
                return error(404, "NOT_FOUND", "Secret not found");
            };
            let only_enabled = query_param(&query, "filter").as_deref() == Some("state:ENABLED");
            let listed: Vec<Value> = versions
                .iter()
                .enumerate()
                .filter(|(_, (state, _))| !only_enabled || *state == ENABLED)
                .map(|(i, (state, _))| {
                    json!({"name": format!("projects/test-project/secrets/{id}/versions/{}", i + 1), "state": state})
                })
                .collect();
            axum::Json(json!({"versions": listed})).into_response()
        }
        _ => error(400, "INVALID_ARGUMENT", "unexpected request"),
    }
}

async fn start(fake: Shared) -> GcpStore {
    let app = Router::new().fallback(handle).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = SecretManagerService::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        // The default policy retries GETs for seconds; a test wants the first answer.
        .with_retry_policy(NeverRetry)
        .build()
        .await
        .unwrap();
    GcpStore::with_client("test-project", client).unwrap()
}

fn requests(fake: &Shared) -> Vec<Recorded> {
    fake.lock().unwrap().requests.clone()
}

fn assert_never_accessed(fake: &Shared) {
    for r in requests(fake) {
        assert!(!r.path.contains(":access"), "a payload was accessed: {} {}", r.method, r.path);
    }
}

#[tokio::test]
async fn put_creates_the_secret_then_adds_a_version_and_presence_turns_present() {
    let fake = Shared::default();
    let store = start(fake.clone()).await;

    assert_eq!(store.presence("openweather-api-key").await.unwrap(), Presence::Missing);
    store.put("openweather-api-key", &SecretValue::new("s3cr3t")).await.unwrap();
    assert_eq!(store.presence("openweather-api-key").await.unwrap(), Presence::Present);
    // A second put finds the secret already there and only adds a version.
    store.put("openweather-api-key", &SecretValue::new("rotated")).await.unwrap();

    let seen = requests(&fake);
    let summary: Vec<String> = seen.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        summary,
        [
            "GET /v1/projects/test-project/secrets/openweather-api-key/versions",
            "POST /v1/projects/test-project/secrets",
            "POST /v1/projects/test-project/secrets/openweather-api-key:addVersion",
            "GET /v1/projects/test-project/secrets/openweather-api-key/versions",
            "POST /v1/projects/test-project/secrets",
            "POST /v1/projects/test-project/secrets/openweather-api-key:addVersion",
        ]
    );
    assert_eq!(query_param(&seen[0].query, "filter").as_deref(), Some("state:ENABLED"));
    assert_eq!(query_param(&seen[1].query, "secretId").as_deref(), Some("openweather-api-key"));
    assert_eq!(seen[1].body, json!({"replication": {"automatic": {}}}));
    assert_eq!(seen[2].body["payload"]["data"], "czNjcjN0");
    assert!(seen.iter().all(|r| query_param(&r.query, "$alt").as_deref() == Some("json;enum-encoding=int")));

    // The payload travels base64-encoded, as the real API takes it ("s3cr3t", "rotated").
    let payloads: Vec<String> =
        fake.lock().unwrap().secrets["openweather-api-key"].iter().map(|(_, data)| data.clone()).collect();
    assert_eq!(payloads, ["czNjcjN0", "cm90YXRlZA=="]);
    assert_never_accessed(&fake);
}

#[tokio::test]
async fn a_secret_without_enabled_versions_is_missing() {
    let fake = Shared::default();
    fake.lock().unwrap().secrets.insert("empty".into(), vec![]);
    fake.lock().unwrap().secrets.insert("disabled".into(), vec![(DISABLED, String::new()), (DESTROYED, String::new())]);
    fake.lock().unwrap().secrets.insert("mixed".into(), vec![(DESTROYED, String::new()), (ENABLED, String::new())]);
    let store = start(fake.clone()).await;
    assert_eq!(store.presence("empty").await.unwrap(), Presence::Missing);
    assert_eq!(store.presence("disabled").await.unwrap(), Presence::Missing);
    assert_eq!(store.presence("mixed").await.unwrap(), Presence::Present);
    assert_never_accessed(&fake);
}

#[tokio::test]
async fn errors_map_to_store_errors() {
    let fake = Shared::default();
    let store = start(fake.clone()).await;

    fake.lock().unwrap().fail_with = Some((403, "PERMISSION_DENIED"));
    let err = store.presence("x").await.unwrap_err();
    assert!(matches!(err, StoreError::PermissionDenied { .. }), "{err:?}");
    let err = store.put("x", &SecretValue::new("v")).await.unwrap_err();
    assert!(matches!(err, StoreError::PermissionDenied { .. }), "{err:?}");

    fake.lock().unwrap().fail_with = Some((503, "UNAVAILABLE"));
    let err = store.presence("x").await.unwrap_err();
    assert_eq!(err.reason(), "StoreUnreachable", "{err:?}");

    fake.lock().unwrap().fail_with = Some((500, "INTERNAL"));
    let err = store.put("x", &SecretValue::new("v")).await.unwrap_err();
    assert!(matches!(err, StoreError::Api { action: "create", .. }), "{err:?}");

    // Nothing is sent for ids the API would refuse, nor for empty values.
    let before = requests(&fake).len();
    assert!(matches!(store.presence("a/b").await, Err(StoreError::InvalidId { .. })));
    assert!(matches!(store.put("ok", &SecretValue::new("")).await, Err(StoreError::EmptyValue { .. })));
    assert_eq!(requests(&fake).len(), before);
}

#[tokio::test]
async fn an_endpoint_nobody_listens_on_is_unreachable() {
    // Bind then drop a listener to get a port that refuses connections.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let client = SecretManagerService::builder()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .with_retry_policy(NeverRetry)
        .build()
        .await
        .unwrap();
    let store = GcpStore::with_client("test-project", client).unwrap();
    let err = store.presence("x").await.unwrap_err();
    assert_eq!(err.reason(), "StoreUnreachable", "{err:?}");
}

#[test]
fn project_ids_that_would_change_the_path_are_refused() {
    assert!(GcpStore::new("my-project-123").is_ok());
    assert!(GcpStore::new("example.com:proj").is_ok());
    for bad in ["", "a/b", "Upper", "p?x"] {
        assert!(matches!(GcpStore::new(bad), Err(StoreError::Config { .. })), "{bad}");
    }
}
