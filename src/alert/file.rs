//! mon's file.alert built in: appends the record Debian's `alert.d/file.alert` writes, in one write; never runs a script.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Local};
use tokio::time::Instant;

use super::{AlertJob, AlertOutcome, alert_env};

/// The record file.alert appends for this job, byte for byte:
///
/// ```text
/// $MON_ALERTTYPE group service TIME (Wday Mon D HH:MM:SS) summary
/// DESCR=$MON_DESCRIPTION
/// OPSTATUS=$MON_OPSTATUS
/// the rest of stdin, verbatim
/// .
/// ```
///
/// The values come from [`alert_env`], exactly what the script would read;
/// the summary is the first line of stdin; the date is the local time of
/// `-t` in perl's `localtime` words, padding removed.
pub fn file_record(job: &AlertJob) -> String {
    let env = alert_env(job);
    let var = |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let alert_type = var("MON_ALERTTYPE").unwrap_or("UNKNOWN ALERT");
    let description = var("MON_DESCRIPTION").unwrap_or_default();
    let opstatus = var("MON_OPSTATUS").unwrap_or("UNKNOWN OPSTATUS");
    let stdin = job.decision.stdin.as_str();
    let (summary, rest) = stdin.split_once('\n').unwrap_or((stdin, ""));
    format!(
        "{alert_type} {} {} {} ({}) {summary}\nDESCR={description}\nOPSTATUS={opstatus}\n{rest}.\n",
        job.group,
        job.service,
        job.time,
        perl_localtime_words(job.time),
    )
}

/// Append the job's record to `path`, creating its parent directories.
pub(super) async fn append(job: &AlertJob, path: &Path, timeout: Duration) -> AlertOutcome {
    let started = Instant::now();
    let record = file_record(job);
    let target = path.to_path_buf();
    let task = tokio::task::spawn_blocking(move || write_record(&target, record.as_bytes()));
    let failure = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(error))) => Some(format!("could not append to {}: {error}", path.display())),
        Ok(Err(error)) => Some(format!("appending to {} failed: {error}", path.display())),
        // The blocking write cannot be cancelled; it may still finish.
        Err(_) => Some(format!(
            "timed out after {timeout:?} appending to {}",
            path.display()
        )),
    };
    AlertOutcome {
        ok: failure.is_none(),
        exit: None,
        message: failure.unwrap_or_default(),
        duration: started.elapsed(),
    }
}

/// perl's `localtime($t)` split on whitespace and rejoined, as file.alert
/// prints it: `Thu Sep 5 12:00:00`.
fn perl_localtime_words(time: i64) -> String {
    match DateTime::from_timestamp(time, 0) {
        Some(utc) => utc
            .with_timezone(&Local)
            .format("%a %b %-d %H:%M:%S")
            .to_string(),
        // Outside chrono's range (hundreds of thousands of years): show the number.
        None => time.to_string(),
    }
}

fn write_record(path: &Path, record: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new().append(true).create(true).open(path)?;
    // One write(2) on an O_APPEND file: records of concurrent alerts never
    // interleave. A short write is reported, not completed by a second write
    // that another record could land in front of.
    let written = file.write(record)?;
    if written != record.len() {
        return Err(io::Error::other(format!(
            "short write: {written} of {} bytes",
            record.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_words_have_no_padding() {
        let words = perl_localtime_words(1_700_000_000);
        let parts: Vec<&str> = words.split(' ').collect();
        assert_eq!(parts.len(), 4, "{words}");
        assert!(!parts[2].starts_with('0'), "{words}");
    }
}
