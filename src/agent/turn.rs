//! One agent turn on a worker thread: model and credential, history from the transcript, the
//! system prompt, the provider stream with failover, the transcript and session-store writes.
//! It reports progress as `TurnUpdate`s; the gateway loop turns those into `agent`/`chat` events.

use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::providers::AbortSignal;
use crate::config::Snapshot;
use crate::state::StateDir;

/// Everything a turn needs; owned, so the worker never touches the gateway's state.
pub struct TurnInput {
    pub run_id: String,
    pub agent_id: String,
    /// Canonical session key (`agent:<id>:<…>`).
    pub session_key: String,
    /// The user's text as the model should see it (envelope added by the caller).
    pub prompt: String,
    pub thinking: Option<String>,
    /// Appended to the system prompt under upstream's context header (`extraSystemPrompt`).
    pub extra_system_prompt: Option<String>,
    pub config: Arc<Snapshot>,
    pub state: StateDir,
    pub workspace: PathBuf,
    pub abort: AbortSignal,
    pub timeout: Duration,
    /// Messages steered into this run while it streams (queue mode `steer`).
    pub steer: Option<crossbeam_channel::Receiver<Steered>>,
}

/// A user message injected into a running turn.
#[derive(Debug, Clone)]
pub struct Steered {
    pub run_id: String,
    pub prompt: String,
}

/// Progress reported while the turn runs.
#[derive(Debug, Clone)]
pub enum TurnUpdate {
    /// A worker picked the turn up.
    Started,
    /// The provider stream produced text: the run's cumulative reply and the new part.
    Text { text: String, delta: String },
    /// A tool call is about to run (the assistant message's `toolCall` block).
    ToolStart { call: Value },
    /// It ran: the `toolResult` message appended to the transcript.
    ToolResult { result: Value },
    /// A steered message was taken into the run (it now ends with this run).
    Steered { run_id: String },
}

/// How the turn ended.
#[derive(Debug, Clone)]
pub enum TurnOutcome {
    /// The final assistant message (pi shape), already persisted; `text` is the reply. The
    /// message is shared: the loop gets a copy of the outcome right on the way to the clients.
    Done {
        message: Arc<Value>,
        text: String,
        provider: String,
        model: String,
        session_id: String,
    },
    /// The user (or an interrupt) aborted it; the partial reply was persisted.
    Aborted { text: String },
    /// Every candidate failed; `message` is the user-facing text.
    Failed { message: String },
}

use crate::agent::auth::{self, AuthContext};
use crate::agent::failover;
use crate::agent::failover::retry::{RetryLayers, SdkRetry};
use crate::agent::models::{self, registry::Registry, ModelRef};
use crate::agent::providers::{Api, ProviderError};
use crate::agent::sessions::SessionStore;
use crate::agent::tools::ToolSet;
use crate::agent::transcript::HistoryPolicy;
use crate::agent::transcript::Transcript;
use crate::agent::turn_loop::{self, RunState};
use crate::agent::turn_request::build_request;
use crate::agent::turn_session::{record_session, session_of, start_new_session};
use crate::util::now_ms;
use serde_json::json;

/// Runs the turn to its end. Never panics on provider, disk or config problems: they become
/// `Failed` with upstream's user-facing text. `on_outcome` hears the outcome as soon as it is
/// known (the transcript is written by then); the `sessions.json` usage update follows it a
/// moment later on the sessions writer (`write_behind`), as upstream persists usage after the
/// run's final event.
pub fn run(
    input: TurnInput,
    on_update: &mut dyn FnMut(TurnUpdate),
    on_outcome: &mut dyn FnMut(&TurnOutcome),
) {
    let (outcome, record, leftovers) = run_inner(input, on_update);
    on_outcome(&outcome);
    drop(leftovers);
    crate::agent::providers::settle_connection();
    if let Some(r) = record {
        crate::agent::write_behind::submit(Box::new(move || {
            r.write(&outcome);
        }));
    }
}

/// The `sessions.json` update a finished turn still owes.
struct Record {
    store: SessionStore,
    key: String,
    session_id: String,
    compactions: u32,
    /// What `contextTokens` is read from, once the end has gone out (a model lookup); none
    /// for a failed turn.
    context: Option<(Arc<Snapshot>, Arc<Registry>)>,
    /// What to record when it differs from what the clients were told (a failure's raw text).
    outcome: Option<TurnOutcome>,
}

impl Record {
    fn write(self, told: &TurnOutcome) {
        let outcome = self.outcome.as_ref().unwrap_or(told);
        let context = self
            .context
            .as_ref()
            .and_then(|(snap, registry)| context_tokens(&snap.config, registry, outcome));
        record_session(
            &self.store,
            &self.key,
            &self.session_id,
            outcome,
            self.compactions,
            context,
        );
    }
}

/// What a finished turn still holds, let go only once `on_outcome` has run: parking the
/// transcript for the next turn (a `stat`, the cache's lock) and freeing the requests and
/// their history are not on the way to the clients.
#[derive(Default)]
struct Leftovers {
    _transcript: Option<crate::agent::transcript::ParkOnDrop>,
    _state: Option<RunState>,
}

fn run_inner(
    input: TurnInput,
    on_update: &mut dyn FnMut(TurnUpdate),
) -> (TurnOutcome, Option<Record>, Leftovers) {
    on_update(TurnUpdate::Started);
    let store = SessionStore::new(input.state.sessions_store(&input.agent_id));
    let choice = session_of(&store, &input.session_key, &input.config.config);
    let (session_id, transcript_path, new_entry) = (choice.id, choice.transcript, choice.new_entry);
    let cwd = input.workspace.to_string_lossy().into_owned();
    // A session minted for this turn has a fresh id: no file (nor parked copy) can exist yet.
    let opened = match new_entry {
        Some(_) => Ok(Transcript::create_pending(
            &transcript_path,
            &session_id,
            &cwd,
            None,
        )),
        None => Transcript::open_for_run(&transcript_path, &session_id, &cwd),
    };
    let mut transcript = match opened {
        Ok(t) => crate::agent::transcript::ParkOnDrop::new(t),
        Err(e) => {
            if let Some(entry) = new_entry {
                entry.write();
            }
            let message = format!("failed to open the session transcript: {e}");
            return (failed(&message), None, Leftovers::default());
        }
    };
    let user = json!({"role": "user", "content": [{"type": "text", "text": input.prompt}], "timestamp": now_ms()});
    let mut state = RunState::new(user);
    // A new session's entry and its transcript's header are written while the provider
    // answers, off the request's path and before the end's.
    let header = transcript.early_header();
    if new_entry.is_some() || header.is_some() {
        state.defer_until_answered(Box::new(move || {
            if let Some(entry) = new_entry {
                entry.write();
            }
            if let Some(header) = header {
                header.write();
            }
        }));
    }
    // A user message left as the leaf by a run that died would make two user turns in a row.
    transcript.drop_orphan_trailing_user();
    state.commit_pending(&mut transcript);
    let cfg = &input.config.config;
    let primary = models::resolve_default_model_for_agent(cfg, Some(&input.agent_id));
    let candidates =
        failover::resolve_fallback_candidates(cfg, &primary.provider, &primary.model, None);
    let registry = Registry::for_snapshot(&input.config);
    let mut last_error = String::new();
    let mut failed_message = None;
    for (i, candidate) in candidates.iter().enumerate() {
        let attempt = attempt(
            &input,
            &registry,
            candidate,
            &mut transcript,
            &mut state,
            on_update,
            &mut failed_message,
        );
        // Whatever happened, the new session's entry is written before anyone hears the end.
        state.run_side_work();
        match attempt {
            Attempt::Done(outcome) => {
                let record = Record {
                    context: Some((input.config.clone(), registry)),
                    store,
                    key: input.session_key.clone(),
                    session_id,
                    compactions: state.compactions,
                    outcome: None,
                };
                let left = Leftovers {
                    _transcript: Some(transcript),
                    _state: Some(state),
                };
                return (outcome, Some(record), left);
            }
            Attempt::FallBack(message) if i + 1 < candidates.len() => {
                log::warn!(target: "agent", "model {}/{} failed ({message}); trying the next candidate", candidate.provider, candidate.model);
                last_error = message;
            }
            Attempt::FallBack(message) | Attempt::Fatal(message) => {
                last_error = message;
                break;
            }
        }
    }
    // No candidate at all: the entry is still owed.
    state.run_side_work();
    // Persisted as upstream does (the error message is kept but filtered from later requests).
    if let Some(message) = failed_message {
        state.commit_pending(&mut transcript);
        let _ = transcript.append_message(message);
    }
    let record = Record {
        store,
        key: input.session_key.clone(),
        session_id,
        compactions: state.compactions,
        context: None,
        outcome: Some(TurnOutcome::Failed {
            message: last_error.clone(),
        }),
    };
    if failover::classify::is_context_overflow_error(&last_error) {
        // The fresh session must exist before anyone hears of it (the next turn reads it).
        let store = SessionStore::new(record.store.path().to_path_buf());
        record.write(&TurnOutcome::Failed {
            message: String::new(),
        });
        return (
            reset_after_overflow(&store, &input.session_key, &primary),
            None,
            Leftovers::default(),
        );
    }
    let text = failover::user_text::format_assistant_error_text(true, &last_error)
        .unwrap_or_else(|| failover::user_text::format_run_failure_text(&last_error));
    let left = Leftovers {
        _transcript: Some(transcript),
        _state: Some(state),
    };
    (TurnOutcome::Failed { message: text }, Some(record), left)
}

/// `contextTokens` for the session entry: `agents.defaults.contextTokens`, else the model's
/// window, else 200 000.
fn context_tokens(cfg: &Value, registry: &Registry, outcome: &TurnOutcome) -> Option<u64> {
    if let Some(n) = cfg
        .pointer("/agents/defaults/contextTokens")
        .and_then(Value::as_u64)
    {
        return Some(n);
    }
    let TurnOutcome::Done {
        provider, model, ..
    } = outcome
    else {
        return None;
    };
    let window = models::registry::resolve_model(cfg, registry, provider, model)
        .map(|m| m.context_window)
        .unwrap_or(0);
    Some(if window > 0 { window } else { 200_000 })
}

/// Upstream's reply layer answers an overflow it could not compact away by starting the
/// session afresh, and says so as the reply.
fn reset_after_overflow(store: &SessionStore, key: &str, primary: &ModelRef) -> TurnOutcome {
    let text = failover::user_text::CONTEXT_RESET_TEXT;
    let Some((session_id, _)) = start_new_session(store, key) else {
        return TurnOutcome::Failed {
            message: failover::user_text::CONTEXT_OVERFLOW_TEXT.into(),
        };
    };
    TurnOutcome::Done {
        message: Arc::new(
            json!({"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": now_ms()}),
        ),
        text: text.into(),
        provider: primary.provider.clone(),
        model: primary.model.clone(),
        session_id,
    }
}

enum Attempt {
    Done(TurnOutcome),
    /// A failover-class error: the next candidate may succeed.
    FallBack(String),
    /// Anything else: stop here.
    Fatal(String),
}

fn failed(message: &str) -> TurnOutcome {
    TurnOutcome::Failed {
        message: failover::user_text::format_run_failure_text(message),
    }
}

/// One model candidate: every usable auth profile in order (cooling ones skipped), else the
/// provider's env key or config key. A failover-class error cools the profile down and moves to
/// the next one; when none is left the next model gets its turn.
fn attempt(
    input: &TurnInput,
    registry: &Registry,
    candidate: &ModelRef,
    transcript: &mut Transcript,
    state: &mut RunState,
    on_update: &mut dyn FnMut(TurnUpdate),
    failed: &mut Option<Value>,
) -> Attempt {
    let cfg = &input.config.config;
    let model =
        match models::registry::resolve_model(cfg, registry, &candidate.provider, &candidate.model)
        {
            Ok(m) => m,
            Err(e) => return Attempt::FallBack(e),
        };
    let Some(api) = Api::parse(&model.api) else {
        return Attempt::FallBack(format!(
            "Unsupported model API \"{}\" for {}/{}",
            model.api, model.provider, model.model_id
        ));
    };
    let snapshot = input.config.clone();
    let env = move |name: &str| snapshot.env(name);
    let paths = auth::AuthPaths::for_agent(cfg, &input.state, &input.agent_id, &env);
    let mut store = paths.load_cached();
    let now = now_ms();
    let profiles: Vec<String> =
        auth::resolve_auth_profile_order(cfg, &store, &model.provider, None, now)
            .into_iter()
            .filter(|id| !auth::is_profile_in_cooldown(&store, id, now))
            .collect();
    let mut choices: Vec<Option<String>> = profiles.into_iter().map(Some).collect();
    if choices.is_empty() {
        choices.push(None);
    }
    let mut last = Attempt::FallBack(format!(
        "No API key found for provider \"{}\".",
        model.provider
    ));
    for profile in choices {
        let ctx = AuthContext {
            config: cfg,
            store: &store,
            agent_dir: &paths.agent_dir,
            env: &env,
            now_ms: now_ms(),
        };
        let credential = match auth::resolve_api_key_for_provider(
            &ctx,
            &model.provider,
            profile.as_deref(),
            None,
        ) {
            Ok(c) => c,
            Err(e) => {
                last = Attempt::FallBack(e.to_string());
                continue;
            }
        };
        let tools = ToolSet::for_turn(cfg, &input.agent_id, &model.provider, &model.model_id);
        let session_id = transcript.session_id().map(str::to_string);
        let mut looped = turn_loop::Attempt {
            input,
            template: build_request(input, &model, api, &credential, &tools, session_id),
            policy: HistoryPolicy::for_model(&model.api, &model.provider, &model.model_id),
            tools: &tools,
            retry: retry_layers(input, &paths.agent_dir),
            cost: model.cost,
        };
        let result = run_with_thinking_downgrade(&mut looped, transcript, state, on_update);
        state.spent.push(looped.template);
        let failure_reason = result
            .as_ref()
            .err()
            .and_then(|e| failover::classify::classify_failover_reason(&e.message));
        if let Some(id) = &credential.profile_id {
            match failure_reason {
                Some(reason) => {
                    auth::mark_auth_profile_failure(&mut store, &paths, id, reason, cfg, now_ms())
                }
                None if result.is_ok() => {
                    auth::mark_auth_profile_good(&mut store, &paths, &model.provider, id);
                    auth::mark_auth_profile_used(&mut store, &paths, id, now_ms());
                }
                None => {}
            }
        }
        last = finish(
            input,
            transcript,
            state,
            result,
            &model.provider,
            &model.model_id,
            failed,
        );
        if !matches!(last, Attempt::FallBack(_)) {
            return last;
        }
    }
    last
}

/// Runs the loop; a provider that rejects the thinking level and names the ones it accepts gets
/// the first untried one (same profile, same model), as upstream retries.
fn run_with_thinking_downgrade(
    looped: &mut turn_loop::Attempt<'_>,
    transcript: &mut Transcript,
    state: &mut RunState,
    on_update: &mut dyn FnMut(TurnUpdate),
) -> Result<Value, ProviderError> {
    let mut attempted = vec![looped.template.thinking];
    loop {
        let result = turn_loop::run(looped, transcript, state, on_update);
        let Err(e) = &result else { return result };
        let next = failover::thinking::pick_fallback_thinking_level(&e.message, &attempted);
        match next {
            Some(level) if !looped.input.abort.is_aborted() => {
                let target = &looped.template.target;
                log::warn!(target: "agent", "unsupported thinking level for {}/{}; retrying with {}", target.provider, target.model_id, level.as_str());
                looped.template.thinking = level;
                attempted.push(level);
            }
            _ => return result,
        }
    }
}

/// The SDK layer's count from `MOLTBOT_SDK_MAX_RETRIES` (default 2, as the SDKs), pi's session
/// layer from `<agentDir>/settings.json` and `<workspace>/.pi/settings.json`.
fn retry_layers(input: &TurnInput, agent_dir: &std::path::Path) -> RetryLayers {
    let mut sdk = SdkRetry::default();
    if let Some(n) = input
        .config
        .env("MOLTBOT_SDK_MAX_RETRIES")
        .and_then(|v| v.trim().parse().ok())
    {
        sdk.max_retries = n;
    }
    RetryLayers::new(sdk, agent_dir, &input.workspace)
}

/// Classifies the loop's end. Messages are already in the transcript; a failure is persisted
/// once, by `run`, after the last candidate (writing each would repeat the user's message).
fn finish(
    input: &TurnInput,
    transcript: &mut Transcript,
    state: &RunState,
    result: Result<Value, ProviderError>,
    provider: &str,
    model: &str,
    failed: &mut Option<Value>,
) -> Attempt {
    let session_id = transcript.session_id().unwrap_or_default().to_string();
    match result {
        Ok(message) => {
            // `NO_REPLY` (at either edge) means "nothing to say": persisted, never delivered.
            let raw = state.reply_text();
            let silent = crate::agent::reply::is_silent_reply_text(
                &raw,
                crate::agent::reply::SILENT_REPLY_TOKEN,
            );
            let text = if silent { String::new() } else { raw };
            if message.get("stopReason").and_then(Value::as_str) == Some("aborted")
                || input.abort.is_aborted()
            {
                return Attempt::Done(TurnOutcome::Aborted { text });
            }
            Attempt::Done(TurnOutcome::Done {
                message: Arc::new(message),
                text,
                provider: provider.into(),
                model: model.into(),
                session_id,
            })
        }
        Err(err) => {
            *failed = Some(err.assistant.clone()).filter(Value::is_object);
            if failover::classify::classify_failover_reason(&err.message).is_some() {
                Attempt::FallBack(err.message)
            } else {
                Attempt::Fatal(err.message)
            }
        }
    }
}
