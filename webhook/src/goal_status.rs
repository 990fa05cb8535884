//! Goals in the cluster: `Goal.status.progress` written by server-side apply with the assistant's
//! own field manager (the operator owns `coveredBy` and conditions under its own), and Goals
//! created for learned pillars the user said "Yes" to.

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use wellbeing_assistant::goals::actions::NewGoal;
use wellbeing_assistant::goals::manifest::goal_object;
use wellbeing_crds::Goal;
use wellbeing_crds::goal::GoalProgress;

/// The field manager of everything the assistant writes on Goals.
pub const FIELD_MANAGER: &str = "wellbeing-assistant";

#[derive(Debug, thiserror::Error)]
pub enum GoalStatusError {
    #[error("failed to apply the progress of goal {namespace}/{name}")]
    Apply {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to create goal {namespace}/{name}")]
    Create {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The apply patch: only the fields this manager owns.
pub fn progress_patch(progress: &GoalProgress) -> Value {
    json!({
        "apiVersion": format!("{}/{}", wellbeing_crds::GROUP, wellbeing_crds::VERSION),
        "kind": "Goal",
        "status": { "progress": progress },
    })
}

/// Whether the stored progress differs from the computed one (status without churn: patch only
/// on change).
pub fn needs_update(goal: &Goal, progress: &GoalProgress) -> bool {
    goal.status.as_ref().and_then(|s| s.progress.as_ref()) != Some(progress)
}

/// Apply one goal's progress.
#[tracing::instrument(skip(client, progress))]
pub async fn apply_progress(
    client: &Client,
    namespace: &str,
    name: &str,
    progress: &GoalProgress,
) -> Result<(), GoalStatusError> {
    let api: Api<Goal> = Api::namespaced(client.clone(), namespace);
    // Forced: this manager is the only writer of status.progress, so a conflict can only be a
    // stale owner from an older release that should be taken over.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(progress_patch(progress)))
        .await
        .map(|_| ())
        .map_err(|source| GoalStatusError::Apply { namespace: namespace.into(), name: name.into(), source })
}

/// Apply the progress of every goal whose stored progress differs. `computed` pairs goal names
/// with their progress (from `goals::runner::goal_progress`). Returns how many were patched.
pub async fn sync_progress(
    client: &Client,
    goals: &[Goal],
    computed: &[(String, GoalProgress)],
) -> Result<usize, GoalStatusError> {
    let mut patched = 0;
    for goal in goals {
        let name = goal.name_any();
        let Some((_, progress)) = computed.iter().find(|(n, _)| *n == name) else { continue };
        if !needs_update(goal, progress) {
            continue;
        }
        let namespace = goal.namespace().unwrap_or_else(|| client.default_namespace().to_string());
        apply_progress(client, &namespace, &name, progress).await?;
        patched += 1;
    }
    Ok(patched)
}

/// Create the Goal for a learned pillar. A Goal of that name that already exists (the user made
/// one, or a retried click) is left as it is: returns false.
#[tracing::instrument(skip(client, goal), fields(goal = %goal.name))]
pub async fn create_learned_goal(client: &Client, namespace: &str, goal: &NewGoal) -> Result<bool, GoalStatusError> {
    let api: Api<Goal> = Api::namespaced(client.clone(), namespace);
    let object = goal_object(&goal.name, Some(namespace), &goal.spec);
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match api.create(&params, &object).await {
        Ok(_) => {
            tracing::info!(namespace, "created a goal for a learned pillar");
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(source) => Err(GoalStatusError::Create { namespace: namespace.into(), name: goal.name.clone(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response};
    use http_body_util::BodyExt;
    use kube::client::Body;
    use wellbeing_assistant::goals::pillars::default_goal;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn progress(current: i32) -> GoalProgress {
        GoalProgress {
            current,
            target: 3,
            summary: format!("{current}/3"),
            period_start: "2026-05-04".into(),
            period_end: "2026-05-10".into(),
            on_track: false,
            streak: 2,
        }
    }

    fn goal(name: &str, stored: Option<GoalProgress>) -> Goal {
        let mut g = goal_object(name, Some("wellbeing"), &default_goal("physical-activity"));
        g.status = Some(wellbeing_crds::GoalStatus { progress: stored, ..Default::default() });
        g
    }

    fn reply(status: u16, body: Value) -> Response<Body> {
        Response::builder().status(status).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap()
    }

    /// Answer one request after checking it; returns its JSON body.
    async fn expect(
        handle: &mut Handle,
        method: Method,
        path: &str,
        query: &[&str],
        status: u16,
        answer: Value,
    ) -> Value {
        let (request, send) = handle.next_request().await.expect("a request");
        assert_eq!(request.method(), method);
        assert_eq!(request.uri().path(), path);
        let q = request.uri().query().unwrap_or_default().to_string();
        for part in query {
            assert!(q.contains(part), "query {q:?} lacks {part:?}");
        }
        let body = request.into_body().collect().await.unwrap().to_bytes();
        send.send_response(reply(status, answer));
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    #[tokio::test]
    async fn only_changed_progress_is_applied_with_the_assistants_field_manager() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "wellbeing");
        let goals = [goal("unchanged", Some(progress(1))), goal("workouts", Some(progress(1)))];
        let computed = [("unchanged".to_string(), progress(1)), ("workouts".to_string(), progress(2))];
        let server = tokio::spawn(async move {
            let stored = serde_json::to_value(goal("workouts", Some(progress(2)))).unwrap();
            let body = expect(
                &mut handle,
                Method::PATCH,
                "/apis/wellbeing.dev/v1alpha1/namespaces/wellbeing/goals/workouts/status",
                &["fieldManager=wellbeing-assistant", "force=true"],
                200,
                stored,
            )
            .await;
            assert_eq!(body["kind"], "Goal");
            assert_eq!(body["status"]["progress"]["summary"], "2/3");
            assert_eq!(body["status"]["progress"]["periodStart"], "2026-05-04");
            assert!(body.get("spec").is_none(), "the assistant applies status.progress only");
            assert!(body["status"].get("coveredBy").is_none(), "coveredBy belongs to the operator");
        });
        assert_eq!(sync_progress(&client, &goals, &computed).await.unwrap(), 1);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_learned_goal_is_created_once() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "wellbeing");
        let new = NewGoal { name: "learned-sleep".into(), spec: default_goal("sleep") };
        let server = tokio::spawn(async move {
            let echoed =
                serde_json::to_value(goal_object("learned-sleep", Some("wellbeing"), &default_goal("sleep"))).unwrap();
            let path = "/apis/wellbeing.dev/v1alpha1/namespaces/wellbeing/goals";
            let body =
                expect(&mut handle, Method::POST, path, &["fieldManager=wellbeing-assistant"], 201, echoed).await;
            assert_eq!(body["metadata"]["name"], "learned-sleep");
            assert_eq!(body["metadata"]["labels"]["wellbeing.dev/learned-pillar"], "sleep");
            assert_eq!(body["spec"]["metric"], "sleep_hours");
            let exists = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "goals.wellbeing.dev \"learned-sleep\" already exists", "reason": "AlreadyExists", "code": 409});
            expect(&mut handle, Method::POST, path, &[], 409, exists).await;
        });
        assert!(create_learned_goal(&client, "wellbeing", &new).await.unwrap());
        assert!(!create_learned_goal(&client, "wellbeing", &new).await.unwrap(), "an existing goal is left alone");
        server.await.unwrap();
    }
}
