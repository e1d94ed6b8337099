//! Evidence of a failing run: a self-contained HTML page with an SVG timeline of one key's
//! operations (one row per client, a bar from invocation to completion; green ok, grey fail,
//! orange info running to the end), the nemesis's faults as bands above, and the anomalies.

use std::fmt::Write as _;

use crate::check::Anomaly;
use crate::history::Call;
use crate::history::Op;
use crate::history::Outcome;
use crate::history::Ret;

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn label(op: &Op) -> String {
    let call = match &op.call {
        Call::Read => "r".to_string(),
        Call::Write(v) => format!("w {v}"),
        Call::Cas { expected, new } => format!("cas {}→{new}", expected.as_deref().unwrap_or("∅")),
        Call::Incr => "incr".to_string(),
        Call::Append(t) => format!("append {t}"),
    };
    let result = match &op.outcome {
        Outcome::Ok(Ret::Read(v)) => format!(" = {}", v.as_deref().unwrap_or("nil")),
        Outcome::Ok(Ret::Cas(s)) => if *s { " ✓" } else { " ✗" }.to_string(),
        Outcome::Ok(Ret::Incr(n) | Ret::Append(n)) => format!(" = {n}"),
        Outcome::Ok(Ret::Write) => String::new(),
        Outcome::Fail(_) => " (fail)".to_string(),
        Outcome::Info(_) => " (info)".to_string(),
    };
    format!("{call}{result}")
}

/// The page for `key`: its operations in `ops` (indices kept as in the history), the faults
/// `(start_ns, end_ns, text)`, and the anomalies about it.
pub fn timeline(key: &str, ops: &[Op], faults: &[(u64, u64, String)], anomalies: &[&Anomaly]) -> String {
    let flagged: Vec<usize> = anomalies.iter().flat_map(|a| a.ops.iter().copied()).collect();
    // The window: the operations the checkers name (all of the key's if none), plus a margin.
    let named: Vec<&Op> = flagged
        .iter()
        .filter_map(|&i| ops.get(i))
        .filter(|op| op.key == key)
        .collect();
    let span: Vec<&Op> = if named.is_empty() {
        ops.iter().filter(|op| op.key == key).collect()
    } else {
        named
    };
    let first = span.iter().map(|op| op.invoked_ns).min().unwrap_or(0);
    let last = span
        .iter()
        .map(|op| op.completed_ns)
        .max()
        .unwrap_or(first)
        .max(first + 1);
    let margin = (last - first) / 10;
    let (start, end) = (first.saturating_sub(margin), last + margin);
    let mine: Vec<(usize, &Op)> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.key == key && op.invoked_ns <= end && op.completed_ns >= start)
        .collect();
    let mut processes: Vec<u64> = mine.iter().map(|(_, op)| op.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let (left, width, row, top) = (90.0, 1400.0, 34.0, 60.0);
    let x = |t: u64| left + (t.saturating_sub(start)) as f64 / (end - start) as f64 * width;
    let height = top + row * processes.len() as f64 + 30.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="monospace" font-size="10">"#,
        left + width + 20.0
    );
    for (from, to, text) in faults {
        if *to < start || *from > end {
            continue;
        }
        let (a, b) = (x((*from).max(start)), x((*to).min(end)));
        let _ = write!(
            svg,
            r##"<rect x="{a:.1}" y="4" width="{:.1}" height="{}" fill="#f4cccc" opacity="0.5"><title>{}</title></rect><text x="{a:.1}" y="16">{}</text>"##,
            (b - a).max(1.0),
            height - 8.0,
            esc(text),
            esc(text.split(':').next().unwrap_or(""))
        );
    }
    for (i, p) in processes.iter().enumerate() {
        let y = top + row * i as f64;
        let _ = write!(svg, r#"<text x="4" y="{:.1}">client {p}</text>"#, y + 14.0);
    }
    for (index, op) in &mine {
        let lane = processes.iter().position(|p| *p == op.process).expect("listed");
        let y = top + row * lane as f64;
        let (fill, to) = match op.outcome {
            Outcome::Ok(_) => ("#9fd89f", op.completed_ns),
            Outcome::Fail(_) => ("#cccccc", op.completed_ns),
            Outcome::Info(_) => ("#f7c77e", end),
        };
        let stroke = if flagged.contains(index) {
            r##" stroke="#c00000" stroke-width="2""##
        } else {
            ""
        };
        let (a, b) = (x(op.invoked_ns.max(start)), x(to.min(end)));
        let text = label(op);
        // A label only where it fits; every bar has its tooltip.
        let shown = if (b - a) >= 6.5 * text.chars().count() as f64 {
            esc(&text)
        } else {
            String::new()
        };
        let _ = write!(
            svg,
            r#"<g><title>#{index} client {} via node {}: {} [{:.3}s – {:.3}s]</title><rect x="{a:.1}" y="{y:.1}" width="{:.1}" height="20" fill="{fill}"{stroke}/><text x="{a:.1}" y="{:.1}">{}</text></g>"#,
            op.process,
            op.node,
            esc(&text),
            op.invoked_ns as f64 / 1e9,
            op.completed_ns as f64 / 1e9,
            (b - a).max(1.5),
            y + 31.0,
            shown,
        );
    }
    svg.push_str("</svg>");
    let mut list = String::new();
    for anomaly in anomalies {
        let _ = write!(
            list,
            "<li><b>{}</b>: {} (operations {:?})</li>",
            esc(anomaly.kind),
            esc(&anomaly.detail),
            anomaly.ops
        );
    }
    format!(
        "<!doctype html><meta charset=\"utf-8\"><title>kv-chaos: {k}</title>\
         <h1>Key {k}: {n} operations between {s:.3}s and {e:.3}s</h1><ul>{list}</ul>\
         <p>Green: ok; grey: failed (no effect); orange: outcome unknown (drawn to the end); red outline: \
         named by a checker; red bands: faults. Hover for details; #n is the index in history.jsonl.</p>\
         <div style=\"overflow-x:auto\">{svg}</div>",
        k = esc(key),
        n = mine.len(),
        s = start as f64 / 1e9,
        e = end as f64 / 1e9,
    )
}
