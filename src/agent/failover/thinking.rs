//! The thinking-level downgrade (`pickFallbackThinkingLevel`): a provider that rejects the
//! requested reasoning effort usually lists what it accepts ("Supported values are: 'low',
//! 'medium' and 'high'."); the first listed level not tried yet is the next attempt's.

use crate::agent::providers::ThinkingLevel;

/// The next level to try, from the error text's list of supported values.
pub fn pick_fallback_thinking_level(
    message: &str,
    attempted: &[ThinkingLevel],
) -> Option<ThinkingLevel> {
    supported_values(message.trim())
        .iter()
        .filter_map(|v| normalize_think_level(v))
        .find(|l| !attempted.contains(l))
}

/// upstream's `normalizeThinkLevel` (without the gateway's wider alias list).
fn normalize_think_level(raw: &str) -> Option<ThinkingLevel> {
    let level = match raw.to_ascii_lowercase().as_str() {
        "off" => "off",
        "on" | "enable" | "enabled" | "low" | "thinkhard" | "think-hard" | "think_hard" => "low",
        "min" | "minimal" | "think" => "minimal",
        "mid" | "med" | "medium" | "thinkharder" | "think-harder" | "harder" => "medium",
        "high" | "ultra" | "ultrathink" | "thinkhardest" | "highest" | "max" => "high",
        "xhigh" | "x-high" | "x_high" => "xhigh",
        _ => return None,
    };
    ThinkingLevel::parse(level)
}

/// The fragment after `supported values are:` / `supported values:` up to a newline or period:
/// its quoted items, else its comma/`and`-separated words.
fn supported_values(raw: &str) -> Vec<String> {
    let lower = raw.to_ascii_lowercase();
    let start = ["supported values are:", "supported values:"]
        .iter()
        .find_map(|m| lower.find(m).map(|i| i + m.len()));
    let Some(start) = start else {
        return Vec::new();
    };
    let rest = &raw[start..];
    let end = rest.find(['\n', '.']).unwrap_or(rest.len());
    let fragment = rest[..end].trim_start();
    let quoted: Vec<String> = fragment
        .split(['\'', '"'])
        .skip(1)
        .step_by(2)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if !quoted.is_empty() {
        return quoted;
    }
    fragment
        .split(',')
        .flat_map(|p| p.split(" and "))
        .map(|p| {
            p.trim_matches(|c: char| !c.is_ascii_alphabetic())
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_untried_supported_level() {
        let msg =
            "400 Unsupported value: 'xhigh'. Supported values are: 'low', 'medium', and 'high'.";
        let low = ThinkingLevel::parse("low").unwrap();
        assert_eq!(pick_fallback_thinking_level(msg, &[]), Some(low));
        let med = ThinkingLevel::parse("medium").unwrap();
        assert_eq!(pick_fallback_thinking_level(msg, &[low]), Some(med));
        let plain = "reasoning effort not allowed; supported values: minimal, low and high";
        assert_eq!(
            pick_fallback_thinking_level(plain, &[]),
            ThinkingLevel::parse("minimal")
        );
        assert_eq!(pick_fallback_thinking_level("429 rate limited", &[]), None);
    }
}
