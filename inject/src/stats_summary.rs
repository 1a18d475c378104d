//! `-stats` as the user reads it: one summary for the whole process tree
//! (every runtime process image's counters summed), printed by dbirun when
//! the application has exited, to dbirun's stderr or `-stats_file`; each
//! process's own block, labelled with its pid and program, on request
//! (`-stats_per_process`). The application's own output is never touched:
//! the runtime processes append their counters to the run report instead
//! of printing them.

use std::collections::BTreeMap;
use std::fmt::Write;

use persist::run_report::{ProcessStats, RunReport, STATS_FIELDS};

fn value_text(key: &str, v: u64) -> String {
    if key.ends_with("_ns") {
        format!("{}.{:03} ms", v / 1_000_000, (v / 1000) % 1000)
    } else {
        v.to_string()
    }
}

/// One block: a header, then each field any process reported, with the
/// rejection reasons under `cache files rejected`.
fn block(out: &mut String, header: &str, values: &BTreeMap<String, u64>, rejected: &[(String, u64)], processes: Option<usize>) {
    let _ = writeln!(out, "{header}");
    if let Some(n) = processes {
        let _ = writeln!(out, "  {:<25}{n}", "processes:");
    }
    for (key, label) in STATS_FIELDS {
        let Some(&v) = values.get(*key) else { continue };
        let _ = writeln!(out, "  {:<25}{}", format!("{label}:"), value_text(key, v));
        if *key == "cache_files_rejected" {
            for (reason, n) in rejected {
                let _ = writeln!(out, "    {reason}: {n}");
            }
        }
    }
}

/// The sum of every process's counters and rejection reasons.
fn total(stats: &[ProcessStats]) -> (BTreeMap<String, u64>, Vec<(String, u64)>) {
    let mut values: BTreeMap<String, u64> = BTreeMap::new();
    let mut rejected: Vec<(String, u64)> = Vec::new();
    for p in stats {
        for (k, v) in &p.values {
            *values.entry(k.clone()).or_default() += v;
        }
        for (reason, n) in &p.rejected {
            match rejected.iter_mut().find(|(r, _)| r == reason) {
                Some((_, c)) => *c += n,
                None => rejected.push((reason.clone(), *n)),
            }
        }
    }
    (values, rejected)
}

/// The text `-stats` prints for `report`; empty when no process reported.
pub fn render(report: &RunReport, per_process: bool) -> String {
    let mut out = String::new();
    if report.stats.is_empty() {
        return out;
    }
    if per_process {
        for p in &report.stats {
            block(&mut out, &format!("dbirun stats: pid {} ({}):", p.pid, p.program), &p.values, &p.rejected, None);
        }
    }
    let (values, rejected) = total(&report.stats);
    let header = if per_process { format!("dbirun stats: total of {} processes:", report.stats.len()) } else { "dbirun stats:".to_string() };
    block(&mut out, &header, &values, &rejected, Some(report.stats.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use persist::run_report::{parse, StatsLine};

    #[test]
    fn sums_every_process_and_labels_each_on_request() {
        let text = [
            StatsLine { pid: 10, image: 1, program: "bash", values: &[("blocks_built", 100), ("translation_ns", 2_500_000)], rejected: &[] }.line(),
            StatsLine {
                pid: 11,
                image: 2,
                program: "ls",
                values: &[("blocks_built", 20), ("translation_ns", 500_000), ("cache_files_rejected", 1)],
                rejected: &[("module changed", 1)],
            }
            .line(),
        ]
        .concat();
        let r = parse(&text);
        let summary = render(&r, false);
        assert_eq!(summary.matches("dbirun stats").count(), 1, "{summary}");
        assert!(summary.contains("  processes:               2\n"), "{summary}");
        assert!(summary.contains("  blocks built:            120\n"), "{summary}");
        assert!(summary.contains("  translation time:        3.000 ms\n"), "{summary}");
        assert!(summary.contains("    module changed: 1\n"), "{summary}");
        assert!(!summary.contains("blocks loaded"), "fields no process reported are left out: {summary}");
        let each = render(&r, true);
        assert!(each.contains("dbirun stats: pid 10 (bash):\n") && each.contains("dbirun stats: pid 11 (ls):\n"), "{each}");
        assert!(each.contains("dbirun stats: total of 2 processes:\n"), "{each}");
        assert_eq!(render(&parse(""), false), "");
    }
}
