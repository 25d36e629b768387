//! The provider request a turn starts from: the model target, the credential as the wire needs
//! it, the thinking level, the tools and the system prompt (workspace files, runtime facts).

use serde_json::Value;
use std::sync::Arc;

use crate::agent::auth::{self, AuthMode, ResolvedCredential};
use crate::agent::models;
use crate::agent::providers::{Api, Credential, ModelTarget, Request, ThinkingLevel};
use crate::agent::tools::ToolSet;
use crate::agent::turn::TurnInput;

pub(super) fn build_request(
    input: &TurnInput,
    model: &models::registry::ResolvedModel,
    api: Api,
    credential: &ResolvedCredential,
    tools: &ToolSet,
    session_id: Option<String>,
) -> Request {
    let mut target = ModelTarget::new(&model.provider, api, &model.model_id, &model.base_url);
    target.headers = model.headers.clone();
    target.max_tokens = model.max_tokens.min(u64::from(u32::MAX)) as u32;
    target.context_window = model.context_window.min(u64::from(u32::MAX)) as u32;
    target.reasoning = model.reasoning;
    target.input_images = model.supports_images();
    let mut request = Request::new(target, wire_credential(credential, api));
    request.system = system_prompt(input, &model.provider, &model.model_id, tools);
    request.tools = tools.specs();
    request.thinking = thinking_level(input, model);
    request.session_id = session_id;
    request.timeout = input.timeout;
    request
}

/// Anthropic API keys travel as `x-api-key`; tokens (setup-token, OAuth) and every OpenAI key
/// as a bearer token.
fn wire_credential(c: &ResolvedCredential, api: Api) -> Credential {
    let secret = c.secret.expose().to_string();
    match (api, c.kind) {
        (Api::AnthropicMessages, AuthMode::ApiKey) if !auth::is_anthropic_setup_token(&secret) => {
            Credential::ApiKey(secret)
        }
        (Api::AnthropicMessages, _) => Credential::Bearer(secret),
        // Gemini sends any credential as `x-goog-api-key`.
        (Api::GoogleGenerativeAi, _) => Credential::ApiKey(secret),
        _ => Credential::Bearer(secret),
    }
}

fn thinking_level(input: &TurnInput, model: &models::registry::ResolvedModel) -> ThinkingLevel {
    let cfg = &input.config.config;
    let configured = input.thinking.clone().or_else(|| {
        cfg.pointer("/agents/defaults/thinkingDefault")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let level = configured.unwrap_or_else(|| {
        if model.reasoning {
            "low".into()
        } else {
            "off".into()
        }
    });
    ThinkingLevel::parse(&level).unwrap_or(ThinkingLevel::Off)
}

/// The system prompt for this turn (agents.md §3.2): the workspace's bootstrap files, the
/// runtime line, the offered tools and the fixed sections.
fn system_prompt(input: &TurnInput, provider: &str, model: &str, tools: &ToolSet) -> Arc<str> {
    use crate::agent::{bootstrap, envelope, prompt, prompt_cache};
    let cfg = &input.config.config;
    let ws = input.workspace.to_string_lossy().into_owned();
    let skip = cfg.pointer("/agents/defaults/skipBootstrap") == Some(&Value::Bool(true));
    let max_chars = bootstrap::resolve_bootstrap_max_chars(cfg);
    let context = prompt_cache::workspace_context(&ws, skip, Some(&input.session_key), max_chars);
    let tz = cfg
        .pointer("/agents/defaults/userTimezone")
        .and_then(Value::as_str);
    let inputs = prompt_cache::TurnInputs {
        agent_id: input.agent_id.clone(),
        workspace: ws,
        model: format!("{provider}/{model}"),
        thinking: input.thinking.clone(),
        extra_system_prompt: input.extra_system_prompt.clone(),
        subagent: bootstrap::is_subagent_session_key(&input.session_key),
        tools: tools.names(),
        timezone: envelope::resolve_user_timezone(tz),
        runtime: prompt::RuntimeInfo {
            repo_root: bootstrap::resolve_repo_root(None, &input.workspace, None)
                .map(|p| p.to_string_lossy().into_owned()),
            ..prompt::RuntimeInfo::detect()
        },
    };
    let params = |i: &prompt_cache::TurnInputs| {
        let default = models::resolve_configured_model_ref(
            cfg,
            models::DEFAULT_PROVIDER,
            models::DEFAULT_MODEL,
        );
        prompt::PromptParams {
            agent_id: Some(i.agent_id.clone()),
            workspace_dir: i.workspace.clone(),
            model: Some(i.model.clone()),
            default_model: Some(format!("{}/{}", default.provider, default.model)),
            channel: Some("webchat".into()),
            thinking: i.thinking.clone(),
            user_timezone: Some(i.timezone.clone()),
            aliases: prompt::aliases_from_config(cfg),
            heartbeat_prompt: heartbeat_prompt(cfg, &i.agent_id),
            mode: if i.subagent {
                prompt::PromptMode::Minimal
            } else {
                prompt::PromptMode::Full
            },
            runtime: i.runtime.clone(),
            workspace_notes: bootstrap::workspace_notes(&context.0),
            tools: tools.prompt_entries(),
            extra_system_prompt: i.extra_system_prompt.clone(),
            ..Default::default()
        }
    };
    prompt_cache::turn_system_prompt(&input.config, &context, inputs, params)
}

/// The default agent sees its heartbeat prompt; other agents get `(configured)` upstream-side.
fn heartbeat_prompt(cfg: &Value, agent_id: &str) -> Option<String> {
    if agent_id != crate::config::default_agent_id(cfg) {
        return None;
    }
    let configured = cfg
        .pointer("/agents/defaults/heartbeat/prompt")
        .and_then(Value::as_str);
    Some(
        configured
            .unwrap_or(crate::gateway::health::DEFAULT_HEARTBEAT_PROMPT)
            .to_string(),
    )
}
