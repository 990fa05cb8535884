//! `/healthz` (the process is up), `/readyz` (the database takes writes and has every migration;
//! personas are synced; says when the built-in default persona speaks) and `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use wellbeing_assistant::persona::PersonaSource;

use crate::app::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.engine.store().clone();
    let db = tokio::task::spawn_blocking(move || store.check_ready()).await;
    let mut lines = Vec::new();
    let mut ready = true;
    match db {
        Ok(Ok(())) => lines.push("database: ok".to_string()),
        Ok(Err(error)) => {
            ready = false;
            lines.push(format!("database: {error}"));
        }
        Err(_) => {
            ready = false;
            lines.push("database: check did not finish".to_string());
        }
    }
    if !state.personas_synced() {
        ready = false;
        lines.push("personas: not synced yet".to_string());
    }
    let active = state.engine.personas().active();
    lines.push(match active.source {
        PersonaSource::Active => format!("persona: {} ({})", active.name(), active.version()),
        PersonaSource::Default => "persona: built-in default (no active Persona)".to_string(),
        PersonaSource::Conflict => {
            format!("persona: built-in default (conflict: {} are all active)", active.conflicting.join(", "))
        }
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, lines.join("\n") + "\n").into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
        .into_response()
}
