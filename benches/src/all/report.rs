//! From the rows of every run to `docs/benchmarks.md`'s generated part:
//! per workload, size and system the median, the spread (min-max) and
//! the ratio of medians to the area's reference system from the same run.

use super::run::Row;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The reference system of each area: ratios are a system's median over
/// the reference's.
pub fn reference(area: &str) -> &'static str {
    match area {
        "loop" => "C",
        "green" => "libev::green",
        _ => "C libev",
    }
}

/// The systems that are this project's own (for "slower than the best
/// peer").
pub fn ours(system: &str) -> bool {
    matches!(
        system,
        "libev::green"
            | "Vec<Timer>"
            | "Vec<Timer>::restart"
            | "TimerArray"
            | "TimerArray::restart"
            | "Vec<Io>"
            | "libev"
    )
}

/// The figures of one (workload, size, system).
#[derive(Clone, Debug)]
pub struct Stat {
    pub system: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
    pub unit: String,
    /// Median over the reference's median, if the reference ran.
    pub ratio: Option<f64>,
}

/// A workload at one size: (area, workload, size).
pub type Key = (String, String, u64);

/// A workload at one size and its systems, in the order they first
/// appear.
pub type Group = (Key, Vec<Stat>);

/// One system's values and unit, before the statistics.
type Values = (String, Vec<f64>, String);

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// Groups `rows` by (area, workload, size), keeping the order in which
/// workloads and systems first appear.
pub fn groups(rows: &[Row]) -> Vec<Group> {
    let mut order: Vec<Key> = Vec::new();
    let mut by: BTreeMap<Key, Vec<Values>> = BTreeMap::new();
    for r in rows {
        let key = (r.area.clone(), r.workload.clone(), r.n);
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        let systems = by.entry(key).or_default();
        match systems.iter_mut().find(|(s, _, _)| *s == r.system) {
            Some((_, v, _)) => v.push(r.value),
            None => systems.push((r.system.clone(), vec![r.value], r.unit.clone())),
        }
    }
    order
        .into_iter()
        .map(|key| {
            let systems = by.remove(&key).unwrap_or_default();
            let mut stats: Vec<Stat> = systems
                .into_iter()
                .map(|(system, mut v, unit)| {
                    let (min, max) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
                    Stat { system, median: median(&mut v), min, max, runs: v.len(), unit, ratio: None }
                })
                .collect();
            let reference = stats.iter().find(|s| s.system == reference(&key.0)).map(|s| s.median);
            for s in &mut stats {
                s.ratio = reference.filter(|&r| r > 0.0).map(|r| s.median / r);
            }
            (key, stats)
        })
        .collect()
}

/// A figure with about four significant digits.
pub fn num(x: f64) -> String {
    if x >= 1000.0 {
        size(x.round() as u64)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The size column: `1 000 000` rather than `1000000`.
pub fn size(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> =
        digits.as_bytes().rchunks(3).rev().map(|c| std::str::from_utf8(c).expect("digits")).collect();
    groups.join(" ")
}

/// The tables of one area: one row per (workload, size, system). Rate
/// rows (`*_rate`) are shown next to the CPU figure they go with.
pub fn table(out: &mut String, groups: &[Group], area: &str, size_name: &str) {
    let _ = writeln!(
        out,
        "| workload | {size_name} | system | median | min-max | runs | vs {} |",
        reference(area)
    );
    let _ = writeln!(out, "| --- | ---: | --- | ---: | ---: | ---: | ---: |");
    for ((a, workload, n), stats) in groups {
        if a != area || workload.ends_with("_rate") {
            continue;
        }
        let rate =
            groups.iter().find(|((a2, w2, n2), _)| a2 == a && *w2 == format!("{workload}_rate") && n2 == n);
        for (i, s) in stats.iter().enumerate() {
            let label = if i == 0 { workload.as_str() } else { "" };
            let n = if i == 0 { size(*n) } else { String::new() };
            let rate = rate
                .and_then(|(_, rs)| rs.iter().find(|r| r.system == s.system))
                .map_or(String::new(), |r| format!(" ({} {})", num(r.median), r.unit));
            let _ = writeln!(
                out,
                "| {label} | {n} | {} | {} {}{rate} | {}-{} | {} | {} |",
                s.system,
                num(s.median),
                s.unit,
                num(s.min),
                num(s.max),
                s.runs,
                s.ratio.map_or("-".to_owned(), |r| format!("{r:.2}"))
            );
        }
    }
    out.push('\n');
}

/// A workload where one of this project's systems is not the fastest (or
/// leanest): its figure and the best peer's.
pub struct Slower {
    pub area: String,
    pub workload: String,
    pub n: u64,
    pub ours: String,
    pub ours_median: f64,
    pub best: String,
    pub best_median: f64,
    pub unit: String,
}

/// Lists the [`Slower`] cases: lower is better for every figure shown
/// (rates are left out), the timers and io watchers judged one side at a
/// time, and the controls (`libev-sys`, C's pointer arrays) are no peers.
pub fn slower(groups: &[Group]) -> Vec<Slower> {
    let control = |system: &str| system == "libev-sys" || system == "C pointer array";
    let mut v = Vec::new();
    for ((area, workload, n), stats) in groups {
        if workload.ends_with("_rate")
            || workload.starts_with("timer_ptrs")
            || workload.starts_with("io_ptrs")
            || workload.ends_with("(interleaved)")
        {
            continue;
        }
        let peers = stats.iter().filter(|s| !ours(&s.system) && !control(&s.system));
        let Some(best) = peers.min_by(|a, b| a.median.total_cmp(&b.median)) else {
            continue;
        };
        // Within 3%: a tie on this machine.
        for s in stats.iter().filter(|s| ours(&s.system) && s.median > best.median * 1.03) {
            v.push(Slower {
                area: area.clone(),
                workload: workload.clone(),
                n: *n,
                ours: s.system.clone(),
                ours_median: s.median,
                best: best.system.clone(),
                best_median: best.median,
                unit: s.unit.clone(),
            });
        }
    }
    v
}
