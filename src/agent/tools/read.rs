//! The `read` tool (pi-coding-agent's, with moltbot's Claude-Code aliases): a text file's lines
//! with the 2000-line / 50 KB head truncation and its continuation notes, or an image as a block.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::{Tool, ToolContext, ToolOutput};

const MAX_LINES: usize = 2000;
const MAX_BYTES: usize = 50 * 1024;
/// Whole files above this are refused rather than read into memory (a 512 MB machine runs
/// several turns at once; the model sees at most 50 KB of text anyway).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

pub struct ReadTool;

impl Tool for ReadTool {
    fn name(&self) -> &'static str {
        "read"
    }

    fn description(&self) -> String {
        format!(
            "Read the contents of a file. Supports text files and images (jpg, png, gif, webp). Images are sent as attachments. For text files, output is truncated to {MAX_LINES} lines or {}KB (whichever is hit first). Use offset/limit for large files.",
            MAX_BYTES / 1024
        )
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"description": "Path to the file to read (relative or absolute)", "type": "string"},
                "offset": {"description": "Line number to start reading from (1-indexed)", "type": "number"},
                "limit": {"description": "Maximum number of lines to read", "type": "number"},
            },
            "required": ["path"],
        })
    }

    fn required_groups(&self) -> &'static [(&'static [&'static str], &'static str)] {
        &[(&["path", "file_path"], "path (path or file_path)")]
    }

    fn execute(&self, args: &Value, ctx: &ToolContext<'_>) -> Result<ToolOutput, String> {
        if ctx.abort.is_aborted() {
            return Err("Operation aborted".into());
        }
        let raw = args.get("path").and_then(Value::as_str).unwrap_or_default();
        let path = resolve(raw, ctx.workspace);
        let meta = std::fs::metadata(&path).map_err(|e| node_error(&e, "access", &path))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!(
                "{raw} is {}, too large to read",
                format_size(meta.len() as usize)
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| node_error(&e, "open", &path))?;
        if let Some(mime) = image_mime(&bytes) {
            return Ok(ToolOutput {
                content: vec![
                    json!({"type": "text", "text": format!("Read image file [{mime}]")}),
                    json!({"type": "image", "data": crate::util::base64_encode(&bytes), "mimeType": mime}),
                ],
                details: None,
            });
        }
        let offset = args.get("offset").and_then(Value::as_f64);
        let limit = args.get("limit").and_then(Value::as_f64);
        read_text(&String::from_utf8_lossy(&bytes), raw, offset, limit)
    }
}

/// `~` expansion, then relative to the workspace.
fn resolve(raw: &str, workspace: &Path) -> PathBuf {
    let home = || crate::state::paths::home_dir();
    let expanded = match raw {
        "~" => home(),
        _ if raw.starts_with("~/") => home().join(&raw[2..]),
        _ => PathBuf::from(raw),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        workspace.join(expanded)
    }
}

/// Node's error text for a failed fs call, which the model sees upstream.
fn node_error(e: &std::io::Error, syscall: &str, path: &Path) -> String {
    let p = path.display();
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("ENOENT: no such file or directory, {syscall} '{p}'")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("EACCES: permission denied, {syscall} '{p}'")
        }
        _ if path.is_dir() => "EISDIR: illegal operation on a directory, read".to_string(),
        _ => format!("{e}, {syscall} '{p}'"),
    }
}

fn image_mime(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn read_text(
    text: &str,
    raw_path: &str,
    offset: Option<f64>,
    limit: Option<f64>,
) -> Result<ToolOutput, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let total = lines.len();
    let start = offset.map_or(0, |o| (o.max(1.0) as usize) - 1);
    if start >= total {
        return Err(format!(
            "Offset {} is beyond end of file ({total} lines total)",
            offset.map(js_number).unwrap_or_default()
        ));
    }
    let end = limit.map(|l| start.saturating_add(l.max(0.0) as usize).min(total));
    let selected = lines[start..end.unwrap_or(total)].join("\n");
    let cut = truncate_head(&selected);
    let first = start + 1;
    let text = if cut.first_line_exceeds {
        format!(
            "[Line {first} is {}, exceeds {} limit. Use bash: sed -n '{first}p' {raw_path} | head -c {MAX_BYTES}]",
            format_size(lines[start].len()),
            format_size(MAX_BYTES)
        )
    } else if let Some(by) = cut.truncated_by {
        let last = first + cut.lines - 1;
        let limit_note = if by == "lines" {
            String::new()
        } else {
            format!(" ({} limit)", format_size(MAX_BYTES))
        };
        format!(
            "{}\n\n[Showing lines {first}-{last} of {total}{limit_note}. Use offset={} to continue]",
            cut.content,
            last + 1
        )
    } else if let Some(end) = end.filter(|e| *e < total) {
        format!(
            "{}\n\n[{} more lines in file. Use offset={} to continue]",
            cut.content,
            total - end,
            end + 1
        )
    } else {
        cut.content
    };
    Ok(ToolOutput::text(text))
}

struct Truncation {
    content: String,
    lines: usize,
    truncated_by: Option<&'static str>,
    first_line_exceeds: bool,
}

/// pi's `truncateHead`: whole lines only, at most `MAX_LINES` lines and `MAX_BYTES` bytes.
fn truncate_head(content: &str) -> Truncation {
    let lines: Vec<&str> = content.split('\n').collect();
    if lines.len() <= MAX_LINES && content.len() <= MAX_BYTES {
        return Truncation {
            content: content.into(),
            lines: lines.len(),
            truncated_by: None,
            first_line_exceeds: false,
        };
    }
    if lines[0].len() > MAX_BYTES {
        return Truncation {
            content: String::new(),
            lines: 0,
            truncated_by: Some("bytes"),
            first_line_exceeds: true,
        };
    }
    let (mut kept, mut bytes, mut by) = (0, 0, "lines");
    for (i, line) in lines.iter().enumerate().take(MAX_LINES) {
        let add = line.len() + usize::from(i > 0);
        if bytes + add > MAX_BYTES {
            by = "bytes";
            break;
        }
        kept += 1;
        bytes += add;
    }
    if kept >= MAX_LINES {
        by = "lines";
    }
    Truncation {
        content: lines[..kept].join("\n"),
        lines: kept,
        truncated_by: Some(by),
        first_line_exceeds: false,
    }
}

/// pi's `formatSize`.
fn format_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes}B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1}KB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1}MB", bytes as f64 / (1024.0 * 1024.0))
    }
}

fn js_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(out: ToolOutput) -> String {
        out.content[0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn limits_and_continuation_notes() {
        let file: String = (1..=2500).map(|i| format!("line {i}\n")).collect();
        let out = text_of(read_text(&file, "f", None, None).expect("read"));
        assert!(
            out.ends_with(
                "line 2000\n\n[Showing lines 1-2000 of 2501. Use offset=2001 to continue]"
            ),
            "{}",
            &out[out.len() - 80..]
        );
        let out = text_of(read_text(&file, "f", Some(10.0), Some(2.0)).expect("read"));
        assert_eq!(
            out,
            "line 10\nline 11\n\n[2490 more lines in file. Use offset=12 to continue]"
        );
        let out = text_of(read_text("a\nb", "f", Some(2.0), Some(1e300)).expect("huge limit"));
        assert_eq!(out, "b");
        let err = read_text("a\nb", "f", Some(5.0), None).err();
        assert_eq!(
            err.as_deref(),
            Some("Offset 5 is beyond end of file (2 lines total)")
        );
    }

    #[test]
    fn byte_limit_and_huge_first_line() {
        let file = "x".repeat(1000) + "\n";
        let big = file.repeat(60);
        let out = text_of(read_text(&big, "f", None, None).expect("read"));
        assert!(
            out.ends_with("[Showing lines 1-51 of 61 (50.0KB limit). Use offset=52 to continue]"),
            "{}",
            &out[out.len() - 90..]
        );
        let huge = "y".repeat(60_000);
        let out = text_of(read_text(&huge, "big.txt", None, None).expect("read"));
        assert_eq!(out, "[Line 1 is 58.6KB, exceeds 50.0KB limit. Use bash: sed -n '1p' big.txt | head -c 51200]");
    }
}
