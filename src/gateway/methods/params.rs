//! Closed-object parameter checks with upstream's wording:
//! `invalid <method> params: at root: unexpected property 'bogus'`.

use serde_json::Value;

use super::RpcError;

/// Fails when `params` is not an object, lacks a required key or has a key not in `allowed`.
pub fn closed(
    method: &str,
    params: &Value,
    allowed: &[&str],
    required: &[&str],
) -> Result<(), RpcError> {
    let Some(obj) = params.as_object() else {
        return Err(RpcError::invalid(format!(
            "invalid {method} params: must be object"
        )));
    };
    let mut problems: Vec<String> = required
        .iter()
        .filter(|k| !obj.contains_key(**k))
        .map(|k| format!("must have required property '{k}'"))
        .collect();
    problems.extend(
        obj.keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| format!("at root: unexpected property '{k}'")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RpcError::invalid(format!(
            "invalid {method} params: {}",
            problems.join("; ")
        )))
    }
}

/// A string parameter, if present and a string.
pub fn str_param<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}
